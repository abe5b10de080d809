/*
 * A stand-in bcryptprimitives.dll for wine 8, which does not ship one.
 *
 * Rust's std (1.78 and later) imports ProcessPrng from bcryptprimitives.dll
 * on Windows; without the DLL every test executable dies before main under
 * wine 8 (exit status 53). Wine 10 and later ship the DLL, and .ci/wine.sh
 * installs this stub only where the prefix has none.
 *
 * ProcessPrng fills the buffer with random bytes and always returns TRUE on
 * Windows; here RtlGenRandom (SystemFunction036 in advapi32) does the work,
 * in chunks because it takes a ULONG length.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -shared -s -o bcryptprimitives.dll \
 *        bcryptprimitives.c -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

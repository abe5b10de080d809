//! Two-thread throughput, 1 GiB per iteration: see
//! `pipekit_bench::throughput` for what each case does. Every cell (chunk
//! size x pipe capacity x pinning) runs its four cases in a row: raw
//! `read`/`write` on a `pipe2` pipe, pipekit, `std::io::pipe` and
//! `os_pipe`. Linux only (pinning, `F_SETPIPE_SZ`).

use criterion::{criterion_group, criterion_main, Criterion};

fn throughput(_c: &mut Criterion) {
    #[cfg(target_os = "linux")]
    {
        use pipekit_bench::throughput::{CASES, CHUNKS};
        use pipekit_bench::{gib_group, Capacity, Pinning};

        for pinning in Pinning::ALL {
            for capacity in Capacity::ALL {
                for chunk in CHUNKS {
                    let name = format!(
                        "throughput/{}/{}/chunk-{}KiB",
                        pinning.name(),
                        capacity.name(),
                        chunk >> 10
                    );
                    let mut group = _c.benchmark_group(name);
                    gib_group(&mut group);
                    for (case, run) in CASES {
                        group.bench_function(case, |b| {
                            b.iter_custom(|iters| {
                                (0..iters).map(|_| run(pinning, capacity, chunk)).sum()
                            })
                        });
                    }
                    group.finish();
                }
            }
        }
    }
}

criterion_group!(benches, throughput);
criterion_main!(benches);

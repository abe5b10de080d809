//! The communicate engine on plain pipes, with threads playing the other
//! side: many pipes, limits, failing sinks, signals, and random schedules.

mod util;

use std::io::{self, Cursor, ErrorKind, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use pipekit::communicate::{Communicator, Sink, Source};
use pipekit::{pipe, PipeOptions, PipeReader, PipeWriter};
use proptest::prelude::*;
use util::{pattern, watchdog};

/// Copies `from` to `to` in chunks of the given sizes (cycled), yielding the
/// thread `pauses[i]` times after chunk i, until end of file.
fn echo(mut from: PipeReader, mut to: PipeWriter, chunks: Vec<usize>, pauses: Vec<u8>) {
    let mut buf = vec![0; chunks.iter().copied().max().unwrap_or(1).max(1)];
    for i in 0.. {
        let size = chunks
            .get(i % chunks.len().max(1))
            .copied()
            .unwrap_or(4096)
            .max(1);
        let n = from.read(&mut buf[..size]).unwrap();
        if n == 0 {
            return;
        }
        to.write_all(&buf[..n]).unwrap();
        for _ in 0..pauses.get(i % pauses.len().max(1)).copied().unwrap_or(0) {
            thread::yield_now();
        }
    }
}

#[test]
fn thirty_two_pipes_fed_and_drained_at_once() {
    watchdog(|| {
        // Each pipe is both fed and drained by the engine, with more data
        // than it holds: only serving all 64 ends at once can finish.
        let data: Vec<Vec<u8>> = (0..32).map(|i| pattern(200_000 + i * 1000)).collect();
        let mut received = vec![Vec::new(); 32];
        let mut communicator = Communicator::new();
        for (bytes, sink) in data.iter().zip(received.iter_mut()) {
            let (reader, writer) = pipe().unwrap();
            communicator.input(writer, bytes).output(reader, sink);
        }
        communicator.run().unwrap();
        drop(communicator);
        for (sent, got) in data.iter().zip(&received) {
            assert!(got == sent, "a pipe lost or changed bytes");
        }
    });
}

#[test]
fn an_empty_input_is_closed_at_once() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let mut out = Vec::new();
        Communicator::new()
            .input(writer, b"")
            .output(reader, &mut out)
            .run()
            .unwrap();
        assert!(out.is_empty());
        // No pipes at all is a finished exchange.
        Communicator::new().run().unwrap();
    });
}

#[test]
fn a_reader_source_is_streamed_through() {
    watchdog(|| {
        let data = pattern(3_000_000);
        let (to_peer_r, to_peer_w) = pipe().unwrap();
        let (from_peer_r, from_peer_w) = pipe().unwrap();
        let peer = thread::spawn(move || echo(to_peer_r, from_peer_w, vec![65_536], vec![0]));
        let mut source = Cursor::new(data.clone());
        let mut out = Vec::new();
        Communicator::new()
            .input(to_peer_w, Source::reader(&mut source))
            .output(from_peer_r, &mut out)
            .run()
            .unwrap();
        peer.join().unwrap();
        assert!(out == data);
    });
}

#[test]
fn a_writer_sink_receives_everything() {
    watchdog(|| {
        let data = pattern(1_000_000);
        let (reader, mut writer) = pipe().unwrap();
        let sent = data.clone();
        let peer = thread::spawn(move || writer.write_all(&sent).unwrap());
        let mut sink = Cursor::new(Vec::new());
        Communicator::new()
            .output(reader, Sink::writer(&mut sink))
            .run()
            .unwrap();
        peer.join().unwrap();
        assert!(sink.into_inner() == data);
    });
}

#[test]
fn limits_keep_the_first_bytes_and_never_block_the_writer() {
    watchdog(|| {
        let data = pattern(2_000_000);
        for use_vec in [true, false] {
            let (reader, mut writer) = pipe().unwrap();
            let sent = data.clone();
            // The writer finishes only if the engine keeps reading past the
            // limit.
            let peer = thread::spawn(move || writer.write_all(&sent).unwrap());
            let mut kept = Vec::new();
            let mut cursor = Cursor::new(Vec::new());
            let sink = if use_vec {
                Sink::from(&mut kept).limit(1000)
            } else {
                Sink::writer(&mut cursor).limit(1000)
            };
            let mut communicator = Communicator::new();
            communicator.output(reader, sink).run().unwrap();
            assert!(communicator.truncated(0));
            drop(communicator);
            peer.join().unwrap();
            let kept = if use_vec { kept } else { cursor.into_inner() };
            assert_eq!(kept, &data[..1000]);
        }
        // An output that fits is not truncated.
        let (reader, mut writer) = pipe().unwrap();
        writer.write_all(b"small").unwrap();
        drop(writer);
        let mut out = Vec::new();
        let mut communicator = Communicator::new();
        communicator
            .output(reader, Sink::from(&mut out).limit(5))
            .run()
            .unwrap();
        assert!(!communicator.truncated(0));
        drop(communicator);
        assert_eq!(out, b"small");
    });
}

#[test]
fn a_failing_sink_stops_the_exchange_and_closes_the_pipes() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::new(ErrorKind::Other, "the sink is full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    watchdog(|| {
        let (reader, mut writer) = pipe().unwrap();
        // Writes until the engine's reader is gone: it ends only if the
        // failed exchange closed its pipe.
        let peer = thread::spawn(move || loop {
            if let Err(err) = writer.write_all(&[1; 65_536]) {
                return err.kind();
            }
        });
        let mut sink = Full;
        let mut communicator = Communicator::new();
        let err = communicator
            .output(reader, Sink::writer(&mut sink))
            .run()
            .unwrap_err();
        assert_eq!(err.to_string(), "the sink is full");
        // Joined while the communicator still exists: the failed run itself
        // must have closed the pipe, not the communicator's drop.
        assert_eq!(peer.join().unwrap(), ErrorKind::BrokenPipe);
        drop(communicator);
    });
}

#[test]
fn the_engine_restores_the_blocking_mode_of_inputs() {
    watchdog(|| {
        let (reader, writer) = pipe().unwrap();
        let clone = writer.try_clone().unwrap();
        let data = pattern(1_000_000);
        let mut communicator = Communicator::new();
        // Nobody reads: the input fills the pipe and the run times out.
        communicator
            .input(writer, &data)
            .timeout(Duration::from_millis(50));
        let err = communicator.run().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(
            !clone.nonblocking().unwrap(),
            "left nonblocking after a timeout"
        );
        drop(communicator);
        drop(reader);

        // An input the caller made nonblocking stays so.
        let (reader, writer) = pipe().unwrap();
        writer.set_nonblocking(true).unwrap();
        let clone = writer.try_clone().unwrap();
        Communicator::new().input(writer, b"x").run().unwrap();
        assert!(clone.nonblocking().unwrap());
        let mut byte = [0];
        (&reader).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    });
}

#[test]
fn the_deadline_is_absolute_and_the_timeout_per_run() {
    watchdog(|| {
        let (reader, _writer) = pipe().unwrap();
        let mut out = Vec::new();
        let mut communicator = Communicator::new();
        communicator.output(reader, &mut out);
        // A deadline already past: TimedOut at once, even with a long timeout.
        communicator
            .deadline(Instant::now() - Duration::from_millis(1))
            .timeout(Duration::from_secs(3600));
        let started = Instant::now();
        assert_eq!(communicator.run().unwrap_err().kind(), ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(30));
        drop(communicator);

        // A deadline 2 s away and an hour's timeout, with a peer that
        // neither sends nor reads: the first run ends at the deadline, not
        // before it and not at the timeout; a second run, the deadline now
        // past, times out at once instead of waiting again (2 s leaves room
        // for a slow start of the engine, as under wine).
        let wait = Duration::from_secs(2);
        let (reader, _writer) = pipe().unwrap();
        let (_unread, writer) = pipe().unwrap();
        let data = pattern(1 << 20); // more than the pipe holds
        let mut out = Vec::new();
        let mut communicator = Communicator::new();
        communicator.input(writer, &data).output(reader, &mut out);
        let started = Instant::now();
        let deadline = started + wait;
        communicator
            .deadline(deadline)
            .timeout(Duration::from_secs(3600));
        let err = communicator.run().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            Instant::now() >= deadline,
            "timed out {:?} after the start, before the deadline",
            started.elapsed()
        );
        assert!(started.elapsed() < Duration::from_secs(30));
        let again = Instant::now();
        let err = communicator.run().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            again.elapsed() < wait,
            "the second run waited {:?} for a deadline already past",
            again.elapsed()
        );
        drop(communicator);
        assert!(out.is_empty());
    });
}

#[test]
fn resuming_with_data_in_flight_on_small_pipes_loses_and_repeats_nothing() {
    watchdog(|| {
        // Small pipes, so that every run is cut while bytes are moving in
        // both directions; plain ends, so that Windows takes its helper
        // threads' path.
        let data = pattern(300_000);
        let small = || PipeOptions::new().capacity(4096).create().unwrap();
        let ((to_peer_r, to_peer_w), (from_peer_r, from_peer_w)) = (small(), small());
        // The peer starts only once the first run has timed out with the
        // input pipe full, so at least one cut happens mid-transfer.
        let (start_tx, start_rx) = std::sync::mpsc::channel::<()>();
        let peer = thread::spawn(move || {
            start_rx.recv().unwrap();
            echo(to_peer_r, from_peer_w, vec![1000, 7000], vec![0, 3])
        });
        let mut out = Vec::new();
        let mut communicator = Communicator::new();
        communicator
            .input(to_peer_w, &data)
            .output(from_peer_r, &mut out);
        // Long enough for the input to fill the small pipe even where
        // starting the engine's helper thread is slow (wine); the peer is
        // not reading yet, so the run cannot finish.
        let err = communicator
            .timeout(Duration::from_millis(200))
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        let first_cut = communicator.bytes_written(0);
        assert!(first_cut > 0 && first_cut < data.len() as u64);
        start_tx.send(()).unwrap();
        let mut timeouts = 1;
        for millis in [2u64, 3, 5].iter().cycle() {
            match communicator.timeout(Duration::from_millis(*millis)).run() {
                Ok(()) => break,
                Err(err) if err.kind() == ErrorKind::TimedOut => timeouts += 1,
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(communicator.bytes_written(0), data.len() as u64);
        drop(communicator);
        peer.join().unwrap();
        assert!(
            out == data,
            "bytes were lost or repeated across {timeouts} resumptions"
        );
    });
}

/// Signals aimed at the thread running the exchange interrupt its `poll`;
/// the deadline must hold anyway.
#[cfg(unix)]
#[test]
fn signals_do_not_distort_the_deadline() {
    let timeout = Duration::from_millis(300);
    watchdog(move || {
        let (reader, writer) = pipe().unwrap();
        let ((result, elapsed), delivered) = util::under_signal_barrage(move || {
            let mut out = Vec::new();
            let started = Instant::now();
            let result = Communicator::new()
                .output(reader, &mut out)
                .timeout(timeout)
                .run();
            (result, started.elapsed())
        });
        drop(writer);
        assert!(delivered > 0, "no signal arrived; the test proved nothing");
        let err = result.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(elapsed >= timeout, "fired early: {elapsed:?}");
        assert!(
            elapsed < timeout + Duration::from_secs(10),
            "fired late: {elapsed:?}"
        );
    });
}

/// One stream of a random exchange: what is sent, and how the peer echoes
/// it back.
#[derive(Debug, Clone)]
struct Stream {
    len: usize,
    chunks: Vec<usize>,
    pauses: Vec<u8>,
}

fn stream() -> impl Strategy<Value = Stream> {
    (
        0usize..400_000,
        prop::collection::vec(1usize..100_000, 1..6),
        prop::collection::vec(0u8..20, 1..6),
    )
        .prop_map(|(len, chunks, pauses)| Stream {
            len,
            chunks,
            pauses,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random sizes, peer chunkings, pauses and orders of adding the pipes:
    /// every stream comes back exactly as it was sent.
    #[test]
    fn random_exchanges_deliver_every_byte_once(
        streams in prop::collection::vec(stream(), 1..5),
        outputs_first in any::<bool>(),
        reverse in any::<bool>(),
    ) {
        let results = watchdog(move || {
            let data: Vec<Vec<u8>> = streams
                .iter()
                .enumerate()
                .map(|(i, s)| pattern(s.len + i).split_off(i))
                .collect();
            let mut ends = Vec::new();
            let mut peers = Vec::new();
            for s in &streams {
                let (to_peer_r, to_peer_w) = pipe().unwrap();
                let (from_peer_r, from_peer_w) = pipe().unwrap();
                let (chunks, pauses) = (s.chunks.clone(), s.pauses.clone());
                peers.push(thread::spawn(move || echo(to_peer_r, from_peer_w, chunks, pauses)));
                ends.push((to_peer_w, from_peer_r));
            }
            let mut received = vec![Vec::new(); streams.len()];
            let mut communicator = Communicator::new();
            let mut order: Vec<usize> = (0..streams.len()).collect();
            if reverse {
                order.reverse();
            }
            let mut pairs: Vec<_> = ends.into_iter().zip(received.iter_mut()).map(Some).collect();
            for &i in &order {
                let ((input, output), sink) = pairs[i].take().unwrap();
                if outputs_first {
                    communicator.output(output, sink).input(input, &data[i]);
                } else {
                    communicator.input(input, &data[i]).output(output, sink);
                }
            }
            communicator.run().unwrap();
            drop(communicator);
            for peer in peers {
                peer.join().unwrap();
            }
            (data, received)
        });
        let (sent, received) = results;
        for (s, r) in sent.iter().zip(&received) {
            prop_assert_eq!(s.len(), r.len());
            prop_assert!(s == r, "bytes lost, repeated or reordered");
        }
    }
}

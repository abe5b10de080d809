//! Copying out of a pipe into `/dev/null` or a file, and relaying one pipe
//! into another, 1 GiB per iteration: see `pipekit_bench::transfer` for
//! what each case does. Linux only.

use criterion::{criterion_group, criterion_main, Criterion};

fn copy(_c: &mut Criterion) {
    #[cfg(target_os = "linux")]
    {
        use pipekit_bench::transfer::{run_copy, Producer, Sink, COPY_CASES};
        use pipekit_bench::{gib_group, Capacity, Pinning};

        let sinks = Sink::all();
        for (pinning, producer) in Pinning::ALL
            .into_iter()
            .flat_map(|p| Producer::ALL.map(|q| (p, q)))
        {
            for sink in &sinks {
                for capacity in Capacity::ALL {
                    let name = format!(
                        "copy/{}/{}/{}/{}",
                        pinning.name(),
                        producer.name(),
                        sink.name,
                        capacity.name()
                    );
                    let mut group = _c.benchmark_group(name);
                    gib_group(&mut group);
                    for (case, run) in COPY_CASES {
                        group.bench_function(case, |b| {
                            b.iter_custom(|iters| {
                                (0..iters)
                                    .map(|_| {
                                        sink.reset();
                                        run_copy(pinning, producer, capacity, &sink.file, run)
                                    })
                                    .sum()
                            })
                        });
                    }
                    group.finish();
                }
            }
        }
    }
}

fn relay(_c: &mut Criterion) {
    #[cfg(target_os = "linux")]
    {
        use pipekit_bench::transfer::{run_relay, Producer, RELAY_CASES};
        use pipekit_bench::{gib_group, Capacity, Pinning};

        for (pinning, producer) in Pinning::ALL
            .into_iter()
            .flat_map(|p| Producer::ALL.map(|q| (p, q)))
        {
            for capacity in Capacity::ALL {
                let name = format!(
                    "relay/{}/{}/{}",
                    pinning.name(),
                    producer.name(),
                    capacity.name()
                );
                let mut group = _c.benchmark_group(name);
                gib_group(&mut group);
                for (case, run) in RELAY_CASES {
                    group.bench_function(case, |b| {
                        b.iter_custom(|iters| {
                            (0..iters)
                                .map(|_| run_relay(pinning, producer, capacity, run))
                                .sum()
                        })
                    });
                }
                group.finish();
            }
        }
    }
}

criterion_group!(benches, copy, relay);
criterion_main!(benches);

//! The engine's inputs and outputs without a pipe, for an engine that does
//! its own I/O: `pipekit::tokio`'s exchange feeds and drains async pipe ends
//! with the same sources, sinks, limits and captures as the engine here.

use std::io;
use std::mem;

use super::{Input, OutputPipe, Sink, SinkKind, Source, Target, TimedOutOutput, VecSink};

impl<'a> Input<'a> {
    /// An input fed from `source`, whose pipe the caller holds.
    pub(crate) fn detached(source: Source<'a>) -> Input<'a> {
        Input::new(None, source)
    }

    /// The bytes to write next; empty once the source is exhausted. Reads a
    /// reader source first when its last chunk is all written.
    pub(crate) fn pending_bytes(&mut self) -> io::Result<&[u8]> {
        Self::pending(&mut self.source)
    }
}

impl<'a> OutputPipe<'a> {
    /// An output drained into `sink` (`None`: captured into a vector of its
    /// own), keeping at most `limit` bytes unless the sink has its own limit.
    /// The caller holds the pipe.
    pub(crate) fn detached(sink: Option<Sink<'a>>, limit: Option<u64>) -> OutputPipe<'a> {
        OutputPipe::new(None, sink.unwrap_or_else(Sink::owned), limit)
    }

    /// Where the next read goes; then [`commit`](OutputPipe::commit) it.
    pub(crate) fn sink_target(&mut self) -> Target<'_> {
        let room = self.room();
        Self::target(&mut self.sink, &mut self.scratch, room)
    }

    /// Moves the captured bytes out (none for a writer sink).
    pub(crate) fn take_captured(&mut self) -> Vec<u8> {
        match &mut self.sink {
            SinkKind::Vec(VecSink::Owned(vec)) => mem::take(vec),
            SinkKind::Vec(VecSink::Borrowed(_)) | SinkKind::Writer(_) => Vec::new(),
        }
    }

    /// Whether bytes past the limit were discarded.
    pub(crate) fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// The timeout payload of a child that was running at the deadline and was
/// killed.
pub(crate) fn killed(mut payload: TimedOutOutput) -> TimedOutOutput {
    payload.killed = true;
    payload
}

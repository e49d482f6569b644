//! A source that may block for good — a FIFO with no writer, a hung network
//! file system, a driver stuck in `open` or `read` — runs on a thread of its
//! own, and the capture thread waits for it with a deadline. A call past its
//! deadline is reported as an error (the watchdog calls the source down and
//! reopens it), the stuck thread is abandoned, and shutdown never waits for
//! it. Without this, `--source /tmp/fifo` stayed `starting` for ever and
//! SIGTERM never exited.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Excess, Format, RawFrame, Source, SourceError};
use crate::sync::lock;

/// Beyond the source's own timeout, how long a read may take.
const GRACE: Duration = Duration::from_secs(2);
/// Abandoned threads still blocked; no new one is started beyond this.
const MAX_STUCK: usize = 2;

/// Whether the waiting side gave up on the thread, and whether it ended.
struct Fate {
    abandoned: bool,
    done: bool,
    /// The opener's count of abandoned threads still blocked.
    stuck: Arc<AtomicUsize>,
}

fn abandon(fate: &Mutex<Fate>) {
    let mut f = lock(fate);
    if !f.done && !f.abandoned {
        f.abandoned = true;
        f.stuck.fetch_add(1, Ordering::AcqRel);
    }
}

fn finished(fate: &Mutex<Fate>) {
    let mut f = lock(fate);
    f.done = true;
    if f.abandoned {
        f.stuck.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Opens sources on threads of their own; one per capture thread, which
/// counts the threads it had to abandon.
#[derive(Default)]
pub struct Opener {
    stuck: Arc<AtomicUsize>,
}

/// A frame (or why not), and what the source refused meanwhile.
type Answer = (Result<Option<RawFrame>, SourceError>, Excess);

pub struct Detached {
    name: String,
    format: Format,
    pixel_format: &'static str,
    ask: Option<SyncSender<Duration>>,
    answers: Receiver<Answer>,
    fate: Arc<Mutex<Fate>>,
    stuck: bool,
    /// What the source refused, until the watchdog takes it.
    excess: Excess,
}

impl Opener {
    /// Opens a source with `opener` on its own thread, waiting at most
    /// `open_timeout` for it. `name` (the device or path) goes into errors.
    pub fn open<F>(
        &self,
        name: &str,
        open_timeout: Duration,
        opener: F,
    ) -> Result<Box<dyn Source>, SourceError>
    where
        F: FnOnce() -> Result<Box<dyn Source>, SourceError> + Send + 'static,
    {
        if self.stuck.load(Ordering::Acquire) >= MAX_STUCK {
            return Err(SourceError(format!(
                "{name}: earlier opens or reads are still blocked; not trying again yet"
            )));
        }
        let (opened_tx, opened_rx) =
            mpsc::sync_channel::<Result<(Format, &'static str), SourceError>>(1);
        let (ask_tx, ask_rx) = mpsc::sync_channel::<Duration>(1);
        let (answer_tx, answer_rx) = mpsc::sync_channel::<Answer>(1);
        let fate = Arc::new(Mutex::new(Fate {
            abandoned: false,
            done: false,
            stuck: self.stuck.clone(),
        }));
        let fate2 = fate.clone();
        let spawned = std::thread::Builder::new()
            .name("source-io".into())
            .spawn(move || {
                serve(opener, &opened_tx, &ask_rx, &answer_tx);
                finished(&fate2);
            });
        if let Err(e) = spawned {
            return Err(SourceError(format!("{name}: cannot start its thread: {e}")));
        }
        match opened_rx.recv_timeout(open_timeout) {
            Ok(Ok((format, pixel_format))) => Ok(Box::new(Detached {
                name: name.to_string(),
                format,
                pixel_format,
                ask: Some(ask_tx),
                answers: answer_rx,
                fate,
                stuck: false,
                excess: Excess::default(),
            })),
            Ok(Err(e)) => Err(e),
            Err(RecvTimeoutError::Timeout) => {
                abandon(&fate);
                Err(SourceError(format!(
                    "{name}: opening it did not return within {:.0} s (a FIFO with no writer? a hung \
                 network file system? a stuck driver?)",
                    open_timeout.as_secs_f64()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => Err(SourceError(format!(
                "{name}: its thread ended while opening it"
            ))),
        }
    }
}

/// The source's thread: open, then answer each request for a frame, until
/// the other side hangs up.
fn serve<F>(
    opener: F,
    opened: &SyncSender<Result<(Format, &'static str), SourceError>>,
    asks: &Receiver<Duration>,
    answers: &SyncSender<Answer>,
) where
    F: FnOnce() -> Result<Box<dyn Source>, SourceError>,
{
    let mut src = match opener() {
        Ok(s) => s,
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    if opened.send(Ok((src.format(), src.pixel_format()))).is_err() {
        return;
    }
    while let Ok(timeout) = asks.recv() {
        let got = src.next_frame(timeout);
        if answers.send((got, src.take_excess())).is_err() {
            return;
        }
    }
}

impl Source for Detached {
    fn next_frame(&mut self, timeout: Duration) -> Result<Option<RawFrame>, SourceError> {
        let gone = || SourceError(format!("{}: its thread ended", self.name));
        if self.stuck {
            return Err(SourceError(format!(
                "{}: still blocked in a read",
                self.name
            )));
        }
        let ask = self.ask.as_ref().ok_or_else(gone)?;
        ask.send(timeout).map_err(|_| gone())?;
        match self.answers.recv_timeout(timeout + GRACE) {
            Ok((answer, excess)) => {
                self.excess.add(excess);
                answer
            }
            Err(RecvTimeoutError::Timeout) => {
                self.stuck = true;
                self.ask = None;
                abandon(&self.fate);
                Err(SourceError(format!(
                    "{}: a read did not return within {:.0} s (a stalled FIFO or network file \
                     system, or a stuck driver)",
                    self.name,
                    (timeout + GRACE).as_secs_f64()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }

    fn format(&self) -> Format {
        self.format
    }

    fn pixel_format(&self) -> &'static str {
        self.pixel_format
    }

    fn take_excess(&mut self) -> Excess {
        std::mem::take(&mut self.excess)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMT: Format = Format {
        width: 64,
        height: 48,
        fps: 10,
    };

    /// Frames at once, until the `block_after`th read, which blocks for good.
    struct Blocking {
        reads: usize,
        block_after: usize,
    }

    impl Source for Blocking {
        fn next_frame(&mut self, _: Duration) -> Result<Option<RawFrame>, SourceError> {
            self.reads += 1;
            if self.reads > self.block_after {
                std::thread::sleep(Duration::from_secs(3600));
            }
            Ok(Some(RawFrame {
                jpeg: vec![0xFF, 0xD8, 0xFF, 0xD9],
                capture: crate::clock::monotonic_now(),
                wall: std::time::SystemTime::now(),
            }))
        }
        fn format(&self) -> Format {
            FMT
        }
        fn take_excess(&mut self) -> Excess {
            Excess {
                frames_over_rate: 1,
                ..Excess::default()
            }
        }
    }

    #[test]
    fn frames_pass_through_and_a_stuck_read_is_an_error_in_time() {
        let mut s = Opener::default()
            .open("stand-in", Duration::from_secs(5), || {
                Ok(Box::new(Blocking {
                    reads: 0,
                    block_after: 2,
                }) as Box<dyn Source>)
            })
            .unwrap();
        assert_eq!(s.format(), FMT);
        assert!(s.next_frame(Duration::from_millis(10)).unwrap().is_some());
        assert!(s.next_frame(Duration::from_millis(10)).unwrap().is_some());
        // What the source refused crosses over with its frames.
        assert_eq!(s.take_excess().frames_over_rate, 2);
        assert!(s.take_excess().is_empty());
        let t0 = std::time::Instant::now();
        let e = s.next_frame(Duration::from_millis(10)).unwrap_err();
        assert!(e.0.contains("did not return"), "{e}");
        assert!(t0.elapsed() < GRACE + Duration::from_secs(2));
        // Then it says so at once.
        let t0 = std::time::Instant::now();
        assert!(s.next_frame(Duration::from_millis(10)).is_err());
        assert!(t0.elapsed() < Duration::from_millis(100));
    }

    #[test]
    fn an_open_that_blocks_is_an_error_in_time_and_errors_pass_through() {
        let o = Opener::default();
        let blocked = || {
            o.open("/tmp/fifo", Duration::from_millis(200), || {
                std::thread::sleep(Duration::from_secs(3600));
                unreachable!()
            })
            .err()
            .unwrap()
        };
        let t0 = std::time::Instant::now();
        let e = blocked();
        assert!(
            e.0.starts_with("/tmp/fifo: opening it did not return"),
            "{e}"
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        // Threads are not piled up behind a source that stays blocked.
        blocked();
        let e = blocked();
        assert!(e.0.contains("still blocked"), "{e}");
        let e = Opener::default()
            .open("x", Duration::from_secs(1), || {
                Err(SourceError("x: no such file".into()))
            })
            .err()
            .unwrap();
        assert_eq!(e.0, "x: no such file");
    }
}

//! The terminal's keys, read on a thread of the console's own.
//!
//! crossterm's event reader loops without end on a terminal that hung up: its mio source
//! ignores a read of 0 bytes and any error but `WouldBlock`/`Interrupted`, and retries at once
//! while holding the reader's lock, so the event loop (which polls the same reader) stops with
//! it and never sees the SIGHUP. Here a thread waits on the terminal with `poll(2)`, reads what
//! came, parses it with terminput (crossterm's parser, published as a crate) and sends the
//! events to the loop; a read that ends (0 bytes) or fails ends the thread with a last
//! [`Input::Gone`]. Nothing is read unless the terminal said it has something, and the thread
//! stops when the [`Reader`] is stopped or dropped (a wake pipe ends its wait), so an external
//! editor can have the terminal to itself.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, poll};
use tokio::sync::mpsc;

/// What the terminal said.
#[derive(Debug)]
pub enum Input {
    /// A key, a paste or anything else the parser understood.
    Event(crossterm::event::Event),
    /// The terminal is gone: its input ended or cannot be read (why). The last message.
    Gone(String),
}

/// A running reader of the terminal.
pub struct Reader {
    rx: mpsc::Receiver<Input>,
    wake: OwnedFd,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reader {
    /// Start reading the terminal: stdin when it is one, else `/dev/tty` (as crossterm does).
    pub fn start() -> std::io::Result<Reader> {
        let stdin = std::io::stdin();
        let tty: OwnedFd = if stdin.is_terminal() {
            stdin.as_fd().try_clone_to_owned()?
        } else {
            std::fs::File::open("/dev/tty")?.into()
        };
        Reader::start_on(tty)
    }

    /// Start reading `tty` (any readable descriptor: the tests give it a pipe or a pty).
    pub fn start_on(tty: OwnedFd) -> std::io::Result<Reader> {
        let (wake_rx, wake) = rustix::pipe::pipe()?;
        let (tx, rx) = mpsc::channel(256);
        let thread = std::thread::Builder::new()
            .name("meshdeck-keys".into())
            .spawn(move || read_loop(&tty, &wake_rx, &tx))?;
        Ok(Reader {
            rx,
            wake,
            thread: Some(thread),
        })
    }

    /// The next thing the terminal said; `None` once the reader has ended.
    pub async fn next(&mut self) -> Option<Input> {
        self.rx.recv().await
    }

    /// Stop reading and wait until the thread has left, so that nothing more is read from the
    /// terminal (before an external editor takes it). Keys typed before are dropped.
    pub async fn stop(mut self) {
        self.rx.close();
        let _ = rustix::io::write(&self.wake, b"x");
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // the thread leaves on its next wake; dropping never waits
        self.rx.close();
        let _ = rustix::io::write(&self.wake, b"x");
    }
}

fn read_loop(tty: &OwnedFd, wake: &OwnedFd, tx: &mpsc::Sender<Input>) {
    let mut parser = Parser::default();
    let mut buf = [0u8; 1024];
    loop {
        let mut fds = [
            PollFd::new(tty, PollFlags::IN),
            PollFd::new(wake, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                let _ = tx.blocking_send(Input::Gone(format!("waiting for the terminal: {e}")));
                return;
            }
        }
        // a stop outranks what the terminal has: the editor's keys are the editor's
        if !fds[1].revents().is_empty() || tx.is_closed() {
            return;
        }
        if fds[0].revents().is_empty() {
            continue;
        }
        // readable, hung up or failed: the read says which (a hung-up terminal reads 0 or EIO)
        let n = match rustix::io::read(tty, &mut buf) {
            Ok(0) => {
                let _ = tx.blocking_send(Input::Gone("the terminal's input ended".into()));
                return;
            }
            Ok(n) => n,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(e) => {
                let _ = tx.blocking_send(Input::Gone(format!("reading the terminal: {e}")));
                return;
            }
        };
        for ev in parser.advance(&buf[..n]) {
            if tx.blocking_send(Input::Event(ev)).is_err() {
                return;
            }
        }
    }
}

/// Bytes to events as crossterm's own parser takes them: byte by byte, a sequence kept until
/// it is whole, a lone ESC a key only when nothing follows it in the same read (else it starts
/// an Alt- or escape sequence), and bytes that make no event dropped.
#[derive(Default)]
pub struct Parser {
    pending: Vec<u8>,
}

impl Parser {
    /// The events `bytes` (one read's worth) complete.
    pub fn advance(&mut self, bytes: &[u8]) -> Vec<crossterm::event::Event> {
        let mut out = Vec::new();
        for (i, b) in bytes.iter().enumerate() {
            self.pending.push(*b);
            let more = i + 1 < bytes.len();
            if more && self.pending == [0x1b] {
                continue;
            }
            match terminput::Event::parse_from(&self.pending) {
                Ok(Some(ev)) => {
                    self.pending.clear();
                    if let Ok(ev) = terminput_crossterm::to_crossterm(ev) {
                        out.push(ev);
                    }
                }
                // a sequence not yet whole; a runaway one is dropped (crossterm's limit)
                Ok(None) if self.pending.len() < 1024 => {}
                Ok(None) | Err(_) => self.pending.clear(),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

    fn keys(chunks: &[&[u8]]) -> Vec<KeyEvent> {
        let mut p = Parser::default();
        chunks
            .iter()
            .flat_map(|c| p.advance(c))
            .filter_map(|e| match e {
                Event::Key(k) => Some(k),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn keys_sequences_and_a_lone_escape() {
        let k = keys(&[b"q", b"\x1b[A", b"\x1b", b"\x1bx", b"\x03"]);
        let codes: Vec<_> = k.iter().map(|k| (k.code, k.modifiers)).collect();
        assert_eq!(
            codes,
            [
                (KeyCode::Char('q'), KeyModifiers::NONE),
                (KeyCode::Up, KeyModifiers::NONE),
                (KeyCode::Esc, KeyModifiers::NONE),
                (KeyCode::Char('x'), KeyModifiers::ALT),
                (KeyCode::Char('c'), KeyModifiers::CONTROL),
            ]
        );
    }

    #[test]
    fn a_sequence_split_across_reads_is_one_key() {
        let k = keys(&[b"\x1b[", b"1;5", b"C"]);
        assert_eq!(k.len(), 1, "{k:?}");
        assert_eq!(k[0].code, KeyCode::Right);
        assert_eq!(k[0].modifiers, KeyModifiers::CONTROL);
    }

    #[test]
    fn utf8_and_garbage() {
        let k = keys(&[b"\xc3\xa9", b"\xff", b"a"]);
        let codes: Vec<_> = k.iter().map(|k| k.code).collect();
        assert_eq!(codes, [KeyCode::Char('é'), KeyCode::Char('a')]);
    }

    #[tokio::test]
    async fn the_end_of_input_is_the_last_message_and_nothing_spins() {
        let (r, w) = rustix::pipe::pipe().expect("pipe");
        let mut reader = Reader::start_on(r).expect("start");
        rustix::io::write(&w, b"jk").expect("write");
        drop(w);
        let mut got = Vec::new();
        while let Some(i) = reader.next().await {
            got.push(i);
        }
        assert!(matches!(got.last(), Some(Input::Gone(_))), "{got:?}");
        assert_eq!(got.len(), 3, "{got:?}");
    }

    #[tokio::test]
    async fn a_stopped_reader_leaves_the_input_to_others() {
        let (r, w) = rustix::pipe::pipe().expect("pipe");
        let keep = r.try_clone().expect("dup");
        let reader = Reader::start_on(r).expect("start");
        reader.stop().await;
        rustix::io::write(&w, b"e").expect("write");
        let mut b = [0u8; 4];
        assert_eq!(rustix::io::read(&keep, &mut b).expect("read"), 1);
        assert_eq!(b[0], b'e');
    }
}

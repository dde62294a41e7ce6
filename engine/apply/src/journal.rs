//! A background writer that group-commits journal entries: each batch is one write + fsync.
//!
//! Work that must only be announced once it is durable ("Creation complete") is queued with
//! [`JournalSink::after_sync`]: the writer runs it after the batch holding every entry queued
//! before it has been synced, so a crash can never leave a reported object out of state.

use std::sync::mpsc;
use std::thread::JoinHandle;

use flotilla_state::{JournalEntry, JournalWriter, StateError};

/// What the writer receives.
enum Message {
    Entry(Box<JournalEntry>),
    AfterSync(Box<dyn FnOnce() + Send>),
}

/// Sends entries to the writer thread.
pub struct JournalSink {
    tx: Option<mpsc::Sender<Message>>,
    handle: Option<JoinHandle<Result<(), StateError>>>,
}

impl JournalSink {
    /// Starts the writer.
    pub fn start(mut journal: Box<dyn JournalWriter>) -> JournalSink {
        let (tx, rx) = mpsc::channel::<Message>();
        let handle = std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut entries = Vec::new();
                let mut after = Vec::new();
                for m in std::iter::once(first).chain(rx.try_iter()) {
                    match m {
                        Message::Entry(e) => entries.push(*e),
                        Message::AfterSync(f) => after.push(f),
                    }
                }
                if !entries.is_empty() {
                    journal.append(&entries)?;
                }
                for f in after {
                    f();
                }
            }
            Ok(())
        });
        JournalSink {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queues an entry; it is durable once the writer's next sync completes.
    pub fn record(&self, entry: JournalEntry) {
        self.send(Message::Entry(Box::new(entry)));
    }

    /// Runs `f` on the writer once everything queued so far is durable.
    pub fn after_sync(&self, f: impl FnOnce() + Send + 'static) {
        self.send(Message::AfterSync(Box::new(f)));
    }

    /// Resolves once everything queued so far is durable (or the writer has stopped on an
    /// error, which [`JournalSink::finish`] reports).
    pub async fn synced(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.after_sync(move || {
            let _ = tx.send(());
        });
        let _ = rx.await;
    }

    fn send(&self, m: Message) {
        if let Some(tx) = &self.tx {
            // A send fails only if the writer stopped on an error, which `finish` reports.
            let _ = tx.send(m);
        }
    }

    /// Flushes everything queued and stops the writer.
    pub fn finish(mut self) -> Result<(), StateError> {
        drop(self.tx.take());
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Ok(()),
            None => Ok(()),
        }
    }
}

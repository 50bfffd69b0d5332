//! [`Flusher`]: the fsync-and-link half of publishing blob files, on a few I/O threads of a batch.
//!
//! An fsync waits for the disk, not the CPU: a 1 MiB blob compresses in a few milliseconds and
//! then its fsync takes about as long again. Done on the thread that put the blob, it leaves a
//! core idle; so a put writes its temp file (a copy into the page cache) and hands the rest of
//! [`vfs::publish`] (fsync the temp file, link it at its name, drop the temp name) to these
//! threads, and [`Flusher::finish`] waits for all of it before the batch fsyncs its directories
//! and commits. Each file still goes through exactly the steps and order of the commit protocol;
//! only the thread that runs them changes.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use camino::Utf8PathBuf;

use crate::digest::Digest;
use crate::error::Error;
use crate::vfs::{self, Published, Vfs};

/// I/O threads per batch. fsyncs issued together share the filesystem's journal commits.
const THREADS: usize = 4;

/// A temp file written and waiting to be made durable and linked at `target`.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) temp: Utf8PathBuf,
    pub(crate) target: Utf8PathBuf,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

/// A job whose target name existed already: its temp file is durable and still in place.
#[derive(Debug)]
pub(crate) struct Existed {
    pub(crate) temp: Utf8PathBuf,
    pub(crate) target: Utf8PathBuf,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

/// What the threads did, once they are all done.
#[derive(Debug, Default)]
pub(crate) struct Finished {
    /// Jobs that found a file at their name; the caller decides which copy to keep.
    pub(crate) existed: Vec<Existed>,
    /// The first failure, if any (every failed job has removed its temp file).
    pub(crate) error: Option<Error>,
}

/// The I/O threads of one batch, started on the first job.
#[derive(Debug)]
pub(crate) struct Flusher {
    vfs: Arc<dyn Vfs>,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    jobs: Sender<Job>,
    threads: Vec<JoinHandle<Finished>>,
}

impl Flusher {
    pub(crate) fn new(vfs: Arc<dyn Vfs>) -> Self {
        Self { vfs, running: None }
    }

    /// Queues `job`; runs it on the calling thread if no I/O thread can be started.
    pub(crate) fn submit(&mut self, job: Job) -> Finished {
        if self.running.is_none() {
            self.running = self.start();
        }
        match &self.running {
            Some(running) => match running.jobs.send(job) {
                Ok(()) => Finished::default(),
                Err(mpsc::SendError(job)) => run_one(&*self.vfs, job),
            },
            None => run_one(&*self.vfs, job),
        }
    }

    fn start(&self) -> Option<Running> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut threads = Vec::with_capacity(THREADS);
        for i in 0..THREADS {
            let (vfs, queue) = (self.vfs.clone(), queue.clone());
            match std::thread::Builder::new()
                .name(format!("autosave-fsync-{i}"))
                .spawn(move || work(&*vfs, &queue))
            {
                Ok(thread) => threads.push(thread),
                Err(_) if !threads.is_empty() => break,
                Err(_) => return None,
            }
        }
        Some(Running { jobs, threads })
    }

    /// Waits for every queued job and reports them.
    pub(crate) fn finish(&mut self) -> Finished {
        let mut all = Finished::default();
        if let Some(Running { jobs, threads }) = self.running.take() {
            drop(jobs);
            for thread in threads {
                let done = thread.join().unwrap_or_else(|_| Finished {
                    existed: Vec::new(),
                    error: Some(Error::io(
                        "fsync",
                        Utf8PathBuf::new(),
                        std::io::Error::other("an I/O thread panicked"),
                    )),
                });
                merge(&mut all, done);
            }
        }
        all
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // No thread outlives its batch (and the store lock the batch holds); a batch dropped
        // without committing leaves no temp file of its own behind.
        for existed in self.finish().existed {
            let _ = self.vfs.remove_file(&existed.temp);
        }
    }
}

/// Adds `done` to `all`, keeping the first error.
pub(crate) fn merge(all: &mut Finished, done: Finished) {
    all.existed.extend(done.existed);
    if all.error.is_none() {
        all.error = done.error;
    }
}

fn work(vfs: &dyn Vfs, queue: &Mutex<Receiver<Job>>) -> Finished {
    let mut all = Finished::default();
    loop {
        // The guard is dropped before the job runs, so the threads fsync concurrently.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => merge(&mut all, run_one(vfs, job)),
            Err(mpsc::RecvError) => return all,
        }
    }
}

fn run_one(vfs: &dyn Vfs, job: Job) -> Finished {
    match vfs::finish_publish(vfs, &job.temp, &job.target) {
        Ok(Published::Created) => Finished::default(),
        Ok(Published::Existed) => Finished {
            existed: vec![Existed {
                temp: job.temp,
                target: job.target,
                digest: job.digest,
                size: job.size,
            }],
            error: None,
        },
        Err(e) => Finished {
            existed: Vec::new(),
            error: Some(e),
        },
    }
}

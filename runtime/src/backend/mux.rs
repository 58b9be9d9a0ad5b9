//! One connection shared by concurrent calls ([`super::pool::Pool`] sends a call here when
//! its direct connections are all busy): a task owns the socket, writes the requests queued
//! meanwhile in one write, and hands each caller the bytes of its answers, in order (the
//! server answers a pipeline in the order it was sent). Under load this costs the server
//! one read and one write per batch instead of per call, which is how a multiplexed client
//! keeps up with 64 concurrent callers on a single-threaded redis.
//!
//! The task dials on its first call and ends when the connection fails, when the server
//! closes it (a restart, noticed even while idle), or when the oldest unanswered call is
//! older than the call deadline (a paused or unreachable server): every call still waiting
//! then fails, and the next call starts a new task. A caller that gives up (its deadline,
//! or its future dropped) leaves its answers to be read and discarded, so the connection
//! stays in step.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::pool::{Failure, Greeting, Request, Wire, dial, frames};

/// One call queued to the task: its encoded commands, how many answers they ask for, and
/// where the answers' bytes go.
struct Job {
    request: Vec<u8>,
    commands: usize,
    answer: oneshot::Sender<Result<BytesMut, Failure>>,
    /// When the call was made: it fails once this is a call deadline ago.
    queued: Instant,
}

/// The shared connection of one server.
pub(super) struct Mux<W: Wire> {
    /// The queue of the running task, if one runs.
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    addrs: Vec<SocketAddr>,
    greeting: Option<Arc<Greeting<W>>>,
    connect_timeout: Duration,
    call_timeout: Duration,
}

impl<W: Wire + 'static> Mux<W> {
    /// A shared connection to `addrs` (dialed on the first call), greeted with `greeting`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code, reason = "only redis shares a connection"))]
    pub(super) fn new(
        addrs: Vec<SocketAddr>,
        greeting: Option<Arc<Greeting<W>>>,
        connect_timeout: Duration,
        call_timeout: Duration,
    ) -> Self {
        Self {
            queue: Mutex::new(None),
            addrs,
            greeting,
            connect_timeout,
            call_timeout,
        }
    }

    /// Queues the commands `encode` writes and waits for the bytes of their answers
    /// (complete, one per command). The task fails the call once it is a call deadline old,
    /// so the caller needs no timer of its own.
    pub(super) async fn call(&self, encode: impl FnOnce(&mut Request<'_>)) -> Result<(BytesMut, usize), Failure> {
        let mut request = Vec::with_capacity(256);
        let mut encoder = Request {
            buffer: &mut request,
            commands: 0,
        };
        encode(&mut encoder);
        let commands = encoder.commands;
        let (answer, answered) = oneshot::channel();
        self.queue(Job {
            request,
            commands,
            answer,
            queued: Instant::now(),
        });
        match answered.await {
            Ok(answers) => answers.map(|bytes| (bytes, commands)),
            Err(_) => Err(Failure::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the shared connection was lost",
            ))),
        }
    }

    /// Hands `job` to the running task, or to a new one if none runs.
    fn queue(&self, job: Job) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let job = match queue.as_ref() {
            Some(sender) => match sender.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (sender, receiver) = mpsc::unbounded_channel();
        // A new queue's receiver is alive: this send cannot fail.
        let _ = sender.send(job);
        *queue = Some(sender);
        let task = Task::<W> {
            receiver,
            addrs: self.addrs.clone(),
            greeting: self.greeting.clone(),
            connect_timeout: self.connect_timeout,
            call_timeout: self.call_timeout,
        };
        tokio::spawn(task.run());
    }
}

/// What the task of one connection owns.
struct Task<W: Wire> {
    receiver: mpsc::UnboundedReceiver<Job>,
    addrs: Vec<SocketAddr>,
    greeting: Option<Arc<Greeting<W>>>,
    connect_timeout: Duration,
    call_timeout: Duration,
}

/// A call written and not yet answered.
struct Waiting {
    commands: usize,
    answer: oneshot::Sender<Result<BytesMut, Failure>>,
    queued: Instant,
}

impl<W: Wire> Task<W> {
    /// Dials, then serves calls until the connection fails; every call waiting then fails.
    async fn run(mut self) {
        let started = Instant::now();
        let deadline = started + self.connect_timeout;
        let greeting = self.greeting.as_deref();
        let mut connection = match dial(&self.addrs, greeting, deadline, self.connect_timeout).await {
            Ok(connection) => connection,
            Err(failure) => {
                self.receiver.close();
                let message = failure.to_string();
                while let Ok(job) = self.receiver.try_recv() {
                    let _ = job.answer.send(Err(Failure::Io(io::Error::other(message.clone()))));
                }
                return;
            }
        };
        let mut waiting: VecDeque<Waiting> = VecDeque::new();
        let mut response = BytesMut::with_capacity(16 * 1024);
        let mut request = Vec::with_capacity(16 * 1024);
        // One timer for the connection, not one per batch: when it fires, the oldest call is
        // checked, and the timer set again to when that call is due. The first call was made
        // when the task was started (before the dial).
        let overdue = tokio::time::sleep_until(started + self.call_timeout);
        tokio::pin!(overdue);
        let failure = loop {
            tokio::select! {
                job = self.receiver.recv() => {
                    let Some(job) = job else { return };
                    // The caller that woke this task may be one of many made ready by the
                    // last answers; let them queue their calls too, so they go out in one
                    // write (tokio runs a task woken by another next, before the rest).
                    tokio::task::yield_now().await;
                    request.clear();
                    let mut next = Some(job);
                    while let Some(job) = next {
                        request.extend_from_slice(&job.request);
                        waiting.push_back(Waiting { commands: job.commands, answer: job.answer, queued: job.queued });
                        next = self.receiver.try_recv().ok();
                    }
                    let due = waiting.front().map_or(Instant::now(), |oldest| oldest.queued) + self.call_timeout;
                    if let Err(failure) = write(&mut connection.stream, &request, due, self.call_timeout).await {
                        break failure;
                    }
                    if request.capacity() > 1 << 20 {
                        request = Vec::with_capacity(16 * 1024);
                    }
                }
                read = connection.stream.read_buf(&mut response) => {
                    match read {
                        Ok(0) => break Failure::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")),
                        Ok(_) => {}
                        Err(error) => break Failure::Io(error),
                    }
                    if let Err(failure) = hand_out::<W>(&mut response, &mut waiting) {
                        break failure;
                    }
                    if response.capacity() - response.len() < 4096 {
                        response.reserve(16 * 1024);
                    }
                }
                () = &mut overdue => {
                    let now = Instant::now();
                    match waiting.front() {
                        Some(oldest) if oldest.queued + self.call_timeout <= now => break timed_out(self.call_timeout),
                        Some(oldest) => overdue.as_mut().reset(oldest.queued + self.call_timeout),
                        None => overdue.as_mut().reset(now + self.call_timeout),
                    }
                }
            }
        };
        // The connection is dropped: fail what waits, and what was queued meanwhile.
        self.receiver.close();
        let message = failure.to_string();
        let fail = |answer: oneshot::Sender<Result<BytesMut, Failure>>| {
            let _ = answer.send(Err(Failure::Io(io::Error::other(message.clone()))));
        };
        waiting.into_iter().for_each(|waiting| fail(waiting.answer));
        while let Ok(job) = self.receiver.try_recv() {
            fail(job.answer);
        }
    }
}

/// Sends every waiting call whose answers are all in `response` its answers' bytes.
fn hand_out<W: Wire>(response: &mut BytesMut, waiting: &mut VecDeque<Waiting>) -> Result<(), Failure> {
    while let Some(next) = waiting.front() {
        let Some(length) = frames::<W>(response, next.commands)? else {
            return Ok(());
        };
        let answers = response.split_to(length);
        if let Some(done) = waiting.pop_front() {
            // A caller that gave up has dropped its receiver: its answers are discarded.
            let _ = done.answer.send(Ok(answers));
        }
    }
    if !response.is_empty() {
        return Err(Failure::Protocol("an answer no call asked for".into()));
    }
    Ok(())
}

/// Writes `request`: at once if the socket takes it all (the common case, no timer), else
/// by `due` (when the oldest waiting call fails).
async fn write(stream: &mut TcpStream, request: &[u8], due: Instant, call_timeout: Duration) -> Result<(), Failure> {
    let written = match stream.try_write(request) {
        Ok(written) => written,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => return Err(Failure::Io(error)),
    };
    if written == request.len() {
        return Ok(());
    }
    match tokio::time::timeout_at(due, stream.write_all(&request[written..])).await {
        Ok(written) => written.map_err(Failure::Io),
        Err(_) => Err(timed_out(call_timeout)),
    }
}

fn timed_out(call_timeout: Duration) -> Failure {
    Failure::Io(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no answer within {call_timeout:?}"),
    ))
}

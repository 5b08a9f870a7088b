//! Watching one client connection against the connection timeouts (SPEC, "Connections"):
//! what its transport, its calls and their answers report in a few atomics ([`Activity`]),
//! and the per-connection [`Watchdog`] that reads them and says when the connection must go.
//!
//! Nothing here arms a timer per call: the transport wrapper ([`Watched`]) notes a stalled
//! write or the first byte of an HTTP/1.1 head, a call notes its start and end ([`CallGuard`]),
//! an answer enters a generation ([`Answer`]); the connection's one timer sleeps until the
//! earliest deadline or the next generation, whichever comes first.

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::caps::{Caps, Full, Slot};
use crate::config::Limits;
use crate::metrics::Closed;

/// "Not set" for the millisecond marks.
const NONE: u64 = u64::MAX;

/// An answer must be taken whole within `write_timeout`; answers are counted in this many
/// generations, one opened every `write_timeout / (GENERATIONS - 1)`, so that a generation
/// still holding an answer when its turn comes again is at least `write_timeout` old.
const GENERATIONS: usize = 4;

/// Largest piece of an answer handed to HTTP/2 at once: a client that grants no flow-control
/// window then leaves the rest in the answer, where the watchdog sees it, not in HTTP/2's send
/// buffer.
const PIECE: usize = 64 * 1024;

/// What one connection is doing, shared by its transport, its calls and its watchdog.
pub(super) struct Activity {
    epoch: Instant,
    /// Calls in flight: from a complete head until the answer is taken or dropped.
    calls: AtomicUsize,
    /// Whether a call holds the connection's own slot (every other call holds one of its own).
    covered: AtomicBool,
    /// Whether a first request head has arrived.
    served: AtomicBool,
    /// HTTP/1.x: bytes read with no call in flight begin a request head.
    h1: AtomicBool,
    /// Milliseconds since `epoch`: the last call's end; a head's first byte; a write that could
    /// not proceed (`NONE` when it could).
    idle_since: AtomicU64,
    head_since: AtomicU64,
    write_blocked: AtomicU64,
    /// Answers not yet taken whole, by generation, and the generation answers enter now.
    answers: [AtomicUsize; GENERATIONS],
    generation: AtomicUsize,
    /// Asked to close because slots run short (`pressure`); the connection waits on `yielding`.
    asked: AtomicBool,
    yielding: tokio::sync::Notify,
    /// The proxy's own HTTP/1.1 server (`h1`): close once idle, or after the answer being
    /// written (hyper's `graceful_shutdown`).
    closing: AtomicBool,
    close: tokio::sync::Notify,
}

impl Activity {
    /// The activity of a connection accepted at `accepted`, when its deadlines start.
    pub(super) fn new(accepted: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            epoch: accepted,
            calls: AtomicUsize::new(0),
            covered: AtomicBool::new(false),
            served: AtomicBool::new(false),
            h1: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            write_blocked: AtomicU64::new(NONE),
            answers: Default::default(),
            generation: AtomicUsize::new(0),
            asked: AtomicBool::new(false),
            yielding: tokio::sync::Notify::new(),
            closing: AtomicBool::new(false),
            close: tokio::sync::Notify::new(),
        })
    }

    /// Since when the connection has been idle: no call in flight and no head begun. One
    /// not served yet counts as idle from accept if it speaks HTTP/1.x and has sent nothing.
    pub(super) fn idle_since(&self) -> Option<Instant> {
        if self.calls.load(Ordering::Acquire) != 0
            || self.head_since.load(Ordering::Relaxed) != NONE
        {
            return None;
        }
        if !self.served.load(Ordering::Acquire) && !self.h1.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.at(self.idle_since.load(Ordering::Acquire)))
    }

    /// Asks the connection to close (slots run short); false if it was asked before.
    pub(super) fn ask_to_close(&self) -> bool {
        if self.asked.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.yielding.notify_one();
        true
    }

    pub(super) fn asked_to_close(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    /// Completes once the connection has been asked to close.
    pub(super) async fn yielding(&self) {
        self.yielding.notified().await;
    }

    /// Asks the connection's HTTP/1.1 server to close once idle (`h1`).
    pub(super) fn close_gracefully(&self) {
        self.closing.store(true, Ordering::Release);
        self.close.notify_one();
    }

    pub(super) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Completes once the connection has been asked to close gracefully.
    pub(super) async fn closing_asked(&self) {
        if !self.closing() {
            self.close.notified().await;
        }
    }

    #[cfg(test)]
    pub(super) fn set_idle_since_for_test(&self, millis: u64) {
        self.idle_since.store(millis, Ordering::Release);
    }

    pub(super) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// The connection speaks HTTP/1.x.
    pub(super) fn set_h1(&self) {
        self.h1.store(true, Ordering::Relaxed);
    }

    fn now(&self) -> u64 {
        self.millis(Instant::now())
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.epoch + Duration::from_millis(millis)
    }

    /// A request head has arrived: the call takes the connection's slot if it is free, else
    /// one of its own from `caps`, or is refused.
    pub(super) fn enter(
        self: &Arc<Activity>,
        caps: &Arc<Caps>,
        ip: IpAddr,
        version: http::Version,
    ) -> Result<CallGuard, Full> {
        if !self.served.load(Ordering::Relaxed) {
            // With cleartext HTTP/2 enabled, the first request tells the protocol.
            if version < http::Version::HTTP_2 {
                self.set_h1();
            }
            self.served.store(true, Ordering::Relaxed);
        }
        let slot = if self.covered.swap(true, Ordering::AcqRel) {
            Some(caps.call(ip)?)
        } else {
            None
        };
        self.calls.fetch_add(1, Ordering::AcqRel);
        if self.head_since.load(Ordering::Relaxed) != NONE {
            self.head_since.store(NONE, Ordering::Relaxed);
        }
        Ok(CallGuard {
            activity: self.clone(),
            slot,
        })
    }

    fn read_some(&self) {
        if self.h1.load(Ordering::Relaxed)
            && self.calls.load(Ordering::Relaxed) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(self.now(), Ordering::Relaxed);
        }
    }

    fn wrote<T>(&self, poll: &Poll<T>) {
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        match poll {
            Poll::Pending if blocked == NONE => {
                self.write_blocked.store(self.now(), Ordering::Relaxed);
            }
            Poll::Ready(_) if blocked != NONE => self.write_blocked.store(NONE, Ordering::Relaxed),
            _ => {}
        }
    }
}

/// One call in flight; the call ends when this is dropped (with its answer).
pub(super) struct CallGuard {
    activity: Arc<Activity>,
    /// The call's own slot; `None`: it holds the connection's.
    slot: Option<Slot>,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let a = &self.activity;
        // Written before the count drops, so whoever sees no call in flight sees this end.
        a.idle_since.store(a.now(), Ordering::Release);
        if self.slot.take().is_none() {
            a.covered.store(false, Ordering::Release);
        }
        a.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client's transport (TCP, under TLS if any), reporting reads and stalled writes.
pub(super) struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    pub(super) fn new(inner: T, activity: Arc<Activity>) -> Watched<T> {
        Watched { inner, activity }
    }
}

impl Watched<tokio::net::TcpStream> {
    /// Ready once the socket may have bytes (or its close) to read, without a buffer: no
    /// syscall while tokio knows it has none.
    pub(super) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        poll
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.wrote(&poll);
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.wrote(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.wrote(&poll);
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.activity.wrote(&poll);
        poll
    }
}

/// An answer on its way to the client: counted in its generation until taken whole or
/// dropped, handed out in pieces of at most [`PIECE`], and holding its call (if it has one)
/// until then.
pub(super) struct Answer<B> {
    inner: B,
    /// The rest of a frame handed out in pieces.
    rest: Bytes,
    activity: Arc<Activity>,
    generation: usize,
    _call: Option<CallGuard>,
}

impl<B> Answer<B> {
    pub(super) fn new(inner: B, activity: Arc<Activity>, call: Option<CallGuard>) -> Answer<B> {
        let generation = activity.generation.load(Ordering::Acquire);
        activity.answers[generation].fetch_add(1, Ordering::AcqRel);
        Answer {
            inner,
            rest: Bytes::new(),
            activity,
            generation,
            _call: call,
        }
    }
}

impl<B> Drop for Answer<B> {
    fn drop(&mut self) {
        self.activity.answers[self.generation].fetch_sub(1, Ordering::AcqRel);
    }
}

impl<B> Body for Answer<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        if this.rest.is_empty() {
            let frame = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                other => return Poll::Ready(other),
            };
            match frame.into_data() {
                Ok(data) if data.len() > PIECE => this.rest = data,
                Ok(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Err(frame) => return Poll::Ready(Some(Ok(frame))),
            }
        }
        let piece = this.rest.split_to(PIECE.min(this.rest.remaining()));
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + rest);
        }
        hint.set_lower(inner.lower() + rest);
        hint
    }
}

/// The timeouts one connection is held to.
#[derive(Clone, Copy)]
pub(super) struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub write: Duration,
}

impl From<&Limits> for Timeouts {
    fn from(limits: &Limits) -> Timeouts {
        Timeouts {
            header: limits.header_read_timeout,
            idle: limits.idle_timeout,
            write: limits.write_timeout,
        }
    }
}

/// Reads one connection's [`Activity`] and says when it must be closed, and why.
pub(super) struct Watchdog {
    activity: Arc<Activity>,
    timeouts: Timeouts,
    /// The longest the watchdog sleeps: a mark it has not seen yet (a head's first byte, a
    /// stalled write, the last call's end) is then still seen before its deadline.
    period: Duration,
    /// How often a new answer generation opens, and when the next one does.
    turn: Duration,
    next_turn: Instant,
}

impl Watchdog {
    pub(super) fn new(activity: Arc<Activity>, timeouts: Timeouts) -> Watchdog {
        let turn = timeouts.write / (GENERATIONS as u32 - 1);
        let period = timeouts.header.min(timeouts.idle).min(timeouts.write);
        Watchdog {
            next_turn: activity.epoch + turn,
            activity,
            timeouts,
            period,
            turn,
        }
    }

    /// When to look next, and whether the connection must go now: `Closed::Idle` asks for a
    /// graceful close (and is not counted in the next wake-up), anything else for an
    /// immediate one.
    pub(super) fn check(&mut self, now: Instant) -> (Instant, Option<Closed>) {
        let a = &*self.activity;
        let t = a.millis(now);
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(NONE / 2);
        let (header, idle, write) = (
            ms(self.timeouts.header),
            ms(self.timeouts.idle),
            ms(self.timeouts.write),
        );
        let mut next = now + self.period;

        // An answer generation that comes round again still holding answers has held them
        // for at least `write_timeout`: turns are at least `turn` apart, even after a late
        // wake-up.
        if now >= self.next_turn {
            let turn = (a.generation.load(Ordering::Relaxed) + 1) % GENERATIONS;
            if a.answers[turn].load(Ordering::Acquire) > 0 {
                return (next, Some(Closed::WriteTimeout));
            }
            a.generation.store(turn, Ordering::Release);
            self.next_turn = now + self.turn;
        }
        next = next.min(self.next_turn);

        let mut deadlines = Vec::with_capacity(3);
        if !a.served.load(Ordering::Acquire) {
            deadlines.push((header, Closed::HeaderTimeout));
        }
        let blocked = a.write_blocked.load(Ordering::Relaxed);
        if blocked != NONE {
            deadlines.push((blocked.saturating_add(write), Closed::WriteTimeout));
        }
        let mut idle_at = None;
        if a.calls.load(Ordering::Acquire) == 0 {
            let head = a.head_since.load(Ordering::Relaxed);
            if head != NONE {
                deadlines.push((head.saturating_add(header), Closed::HeaderTimeout));
            } else {
                idle_at = Some(a.idle_since.load(Ordering::Acquire).saturating_add(idle));
            }
        }
        for (deadline, why) in deadlines {
            if t >= deadline {
                return (next, Some(why));
            }
            next = next.min(a.at(deadline));
        }
        match idle_at {
            Some(deadline) if t >= deadline => (next, Some(Closed::Idle)),
            Some(deadline) => (next.min(a.at(deadline)), None),
            None => (next, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};

    fn timeouts() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            write: Duration::from_secs(30),
        }
    }

    fn caps() -> Arc<Caps> {
        Caps::new(8, None)
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[tokio::test]
    async fn a_connection_without_a_head_goes_at_the_header_deadline() {
        let activity = Activity::new(Instant::now());
        let start = activity.epoch();
        let mut dog = Watchdog::new(activity.clone(), timeouts());
        assert_eq!(dog.check(start), (start + secs(10), None));
        assert_eq!(dog.check(start + secs(10)).1, Some(Closed::HeaderTimeout));

        // With a head in time, the idle deadline counts from the last call's end.
        let activity = Activity::new(Instant::now());
        let start = activity.epoch();
        let mut dog = Watchdog::new(activity.clone(), timeouts());
        let call = activity.enter(&caps(), IP, http::Version::HTTP_11).unwrap();
        assert_eq!(dog.check(start + secs(11)).1, None);
        drop(call);
        activity.idle_since.store(20_000, Ordering::Relaxed);
        let (next, verdict) = dog.check(start + secs(30));
        assert_eq!((next, verdict), (start + secs(40), None), "the period");
        assert_eq!(dog.check(start + secs(79)).1, None);
        assert_eq!(dog.check(start + secs(80)).1, Some(Closed::Idle));
        assert!(
            dog.check(start + secs(80)).0 > start + secs(80),
            "an idle verdict does not make the watchdog spin"
        );
    }

    #[tokio::test]
    async fn a_later_http1_head_has_the_header_timeout_from_its_first_byte() {
        let activity = Activity::new(Instant::now());
        activity.set_h1();
        let start = activity.epoch();
        let mut dog = Watchdog::new(activity.clone(), timeouts());
        drop(activity.enter(&caps(), IP, http::Version::HTTP_11).unwrap());
        activity.read_some();
        assert_ne!(activity.head_since.load(Ordering::Relaxed), NONE);
        activity.head_since.store(5_000, Ordering::Relaxed);
        assert_eq!(dog.check(start + secs(14)).1, None);
        assert_eq!(dog.check(start + secs(15)).1, Some(Closed::HeaderTimeout));
        // The head completes: the mark is cleared.
        let _call = activity.enter(&caps(), IP, http::Version::HTTP_11).unwrap();
        assert_eq!(activity.head_since.load(Ordering::Relaxed), NONE);
        activity.read_some();
        assert_eq!(
            activity.head_since.load(Ordering::Relaxed),
            NONE,
            "bytes read during a call are its body"
        );
    }

    #[tokio::test]
    async fn an_answer_not_taken_goes_after_the_write_timeout() {
        let activity = Activity::new(Instant::now());
        let start = activity.epoch();
        let mut dog = Watchdog::new(activity.clone(), timeouts());
        let call = activity.enter(&caps(), IP, http::Version::HTTP_2).unwrap();
        let answer = Answer::new(Full::new(Bytes::from("x")), activity.clone(), Some(call));
        let mut at = start;
        let verdict = loop {
            let (next, verdict) = dog.check(at);
            if verdict.is_some() || at > start + secs(60) {
                break verdict;
            }
            at = next;
        };
        assert_eq!(verdict, Some(Closed::WriteTimeout));
        assert!(at >= start + secs(30), "{:?}", at - start);
        assert!(at <= start + secs(40), "{:?}", at - start);
        drop(answer);

        // A stalled write is timed from when it stalled; one that proceeds starts afresh.
        let activity = Activity::new(Instant::now());
        let start = activity.epoch();
        let mut dog = Watchdog::new(activity.clone(), timeouts());
        let _call = activity.enter(&caps(), IP, http::Version::HTTP_11).unwrap();
        activity.wrote::<()>(&Poll::Pending);
        assert_ne!(activity.write_blocked.load(Ordering::Relaxed), NONE);
        activity.write_blocked.store(3_000, Ordering::Relaxed);
        assert_eq!(dog.check(start + secs(32)).1, None);
        assert_eq!(dog.check(start + secs(33)).1, Some(Closed::WriteTimeout));
        activity.wrote(&Poll::Ready(()));
        assert_eq!(dog.check(start + secs(34)).1, None);
    }

    #[tokio::test]
    async fn answers_are_handed_out_in_pieces_and_release_their_call() {
        let activity = Activity::new(Instant::now());
        let caps = caps();
        let call = activity.enter(&caps, IP, http::Version::HTTP_2).unwrap();
        let second = activity.enter(&caps, IP, http::Version::HTTP_2).unwrap();
        assert_eq!(activity.calls.load(Ordering::Relaxed), 2);
        let big = Bytes::from(vec![7u8; PIECE * 2 + 5]);
        let answer = Answer::new(Full::new(big.clone()), activity.clone(), Some(call));
        assert_eq!(answer.size_hint().exact(), Some(big.len() as u64));
        let mut answer = answer;
        let mut sizes = Vec::new();
        while let Some(frame) = answer.frame().await {
            sizes.push(frame.unwrap().into_data().unwrap().len());
        }
        assert_eq!(sizes, [PIECE, PIECE, 5]);
        assert!(answer.is_end_stream());
        drop(answer);
        assert_eq!(activity.calls.load(Ordering::Relaxed), 1);
        assert!(
            !activity.covered.load(Ordering::Relaxed),
            "the connection's slot is free for the next call; the second holds its own"
        );
        drop(second);
        assert!(activity
            .answers
            .iter()
            .all(|n| n.load(Ordering::Relaxed) == 0));
    }
}

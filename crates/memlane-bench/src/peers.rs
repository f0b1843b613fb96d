//! The peers memlane is compared with: a pipe (a pair of FIFOs), Unix
//! domain sockets (stream and seqpacket) and iceoryx2 publish-subscribe
//! (busy polling, and woken by its event service).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};

use iceoryx2::port::listener::Listener;
use iceoryx2::port::notifier::Notifier;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use memlane_benchkit::{bad, ChildProc, Job, Link, Transport, Workload};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketType};

/// A byte stream both ways (pipe or stream socket): messages are exactly
/// `size` bytes, so no framing is needed.
pub struct StreamLink<R, W> {
    rx: R,
    tx: W,
    size: usize,
}

impl<R: Read, W: Write> Link for StreamLink<R, W> {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        self.tx.write_all(msg)
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.rx.read_exact(&mut buf[..self.size])?;
        Ok(self.size)
    }
}

/// Two FIFOs, parent → child and child → parent.
pub struct Pipe;

fn mkfifo(path: &std::path::Path) -> io::Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )?;
    Ok(())
}

impl Transport for Pipe {
    type L = StreamLink<File, File>;
    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(Self::L, ChildProc)> {
        mkfifo(&job.path("p2c"))?;
        mkfifo(&job.path("c2p"))?;
        let child = spawn()?;
        // Opening a FIFO blocks until the other end opens it: both sides
        // open p2c first, then c2p.
        let tx = OpenOptions::new().write(true).open(job.path("p2c"))?;
        let rx = File::open(job.path("c2p"))?;
        Ok((
            StreamLink {
                rx,
                tx,
                size: job.size,
            },
            child,
        ))
    }
    fn child(&self, job: &Job) -> io::Result<Self::L> {
        let rx = File::open(job.path("p2c"))?;
        let tx = OpenOptions::new().write(true).open(job.path("c2p"))?;
        Ok(StreamLink {
            rx,
            tx,
            size: job.size,
        })
    }
}

/// A Unix stream socket.
pub struct UnixStreamT;

impl Transport for UnixStreamT {
    type L = StreamLink<UnixStream, UnixStream>;
    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(Self::L, ChildProc)> {
        let listener = UnixListener::bind(job.path("sock"))?;
        let child = spawn()?;
        let (s, _) = listener.accept()?;
        Ok((
            StreamLink {
                rx: s.try_clone()?,
                tx: s,
                size: job.size,
            },
            child,
        ))
    }
    fn child(&self, job: &Job) -> io::Result<Self::L> {
        let s = UnixStream::connect(job.path("sock"))?;
        Ok(StreamLink {
            rx: s.try_clone()?,
            tx: s,
            size: job.size,
        })
    }
}

/// A Unix seqpacket socket: one `send` per message, boundaries kept.
pub struct SeqPacket;

/// One end of a seqpacket connection.
pub struct SeqLink(OwnedFd);

impl Link for SeqLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let n = rustix::net::send(&self.0, msg, SendFlags::empty())?;
        if n != msg.len() {
            return Err(bad(format!("seqpacket sent {n} of {} bytes", msg.len())));
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (n, _) = rustix::net::recv(&self.0, buf, RecvFlags::empty())?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }
}

fn seq_socket(job: &Job) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None)?;
    // Room for two messages, so a 64 KiB one fits.
    let want = (2 * job.size).max(1 << 16);
    rustix::net::sockopt::set_socket_send_buffer_size(&fd, want)?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, want)?;
    Ok(fd)
}

impl Transport for SeqPacket {
    type L = SeqLink;
    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(Self::L, ChildProc)> {
        let fd = seq_socket(job)?;
        rustix::net::bind(&fd, &SocketAddrUnix::new(job.path("seq"))?)?;
        rustix::net::listen(&fd, 1)?;
        let child = spawn()?;
        let conn = rustix::net::accept(&fd)?;
        let want = (2 * job.size).max(1 << 16);
        rustix::net::sockopt::set_socket_send_buffer_size(&conn, want)?;
        rustix::net::sockopt::set_socket_recv_buffer_size(&conn, want)?;
        Ok((SeqLink(conn), child))
    }
    fn child(&self, job: &Job) -> io::Result<Self::L> {
        let fd = seq_socket(job)?;
        rustix::net::connect(&fd, &SocketAddrUnix::new(job.path("seq"))?)?;
        Ok(SeqLink(fd))
    }
}

/// iceoryx2 publish-subscribe of `[u8]` slices: `iox2-spin` busy-polls
/// `receive`, `iox2-event` sleeps on an event listener that the sender
/// notifies after each sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iox2 {
    /// Busy polling.
    Spin,
    /// Event (listener/notifier) wake-ups.
    Event,
}

fn ierr(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("iceoryx2: {e:?}"))
}

/// One side of the iceoryx2 transport.
pub struct IoxLink {
    mode: Iox2,
    publ: Publisher<ipc::Service, [u8], ()>,
    sub: Subscriber<ipc::Service, [u8], ()>,
    notifier: Option<Notifier<ipc::Service>>,
    listener: Option<Listener<ipc::Service>>,
    connected: bool,
    // Dropped last: the ports need their node.
    _node: Node<ipc::Service>,
}

impl Iox2 {
    fn open(&self, job: &Job, parent: bool) -> io::Result<IoxLink> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(ierr)?;
        // Queue depth: what a ring of the same capacity as memlane's holds.
        let depth = (job.ring_capacity() as usize / (job.size + 64)).clamp(2, 256);
        let service = |dir: &str| {
            let name =
                ServiceName::new(&format!("memlane-bench/{}/{dir}", job.tag)).map_err(ierr)?;
            node.service_builder(&name)
                .publish_subscribe::<[u8]>()
                .max_publishers(1)
                .max_subscribers(1)
                .history_size(0)
                .subscriber_max_buffer_size(depth)
                .enable_safe_overflow(false)
                .open_or_create()
                .map_err(ierr)
        };
        let (out, inc) = if parent {
            ("ping", "pong")
        } else {
            ("pong", "ping")
        };
        let out_service = service(out)?;
        let in_service = service(inc)?;
        let publ = out_service
            .publisher_builder()
            .initial_max_slice_len(job.size.max(1))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(ierr)?;
        let sub = in_service.subscriber_builder().create().map_err(ierr)?;
        let (notifier, listener) = if *self == Iox2::Event {
            let event = |dir: &str| {
                let name = ServiceName::new(&format!("memlane-bench/{}/{dir}-ev", job.tag))
                    .map_err(ierr)?;
                node.service_builder(&name)
                    .event()
                    .open_or_create()
                    .map_err(ierr)
            };
            let n = event(out)?.notifier_builder().create().map_err(ierr)?;
            let l = event(inc)?.listener_builder().create().map_err(ierr)?;
            (Some(n), Some(l))
        } else {
            (None, None)
        };
        Ok(IoxLink {
            mode: *self,
            publ,
            sub,
            notifier,
            listener,
            connected: false,
            _node: node,
        })
    }
}

impl Transport for Iox2 {
    type L = IoxLink;
    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(Self::L, ChildProc)> {
        let link = self.open(job, true)?;
        let child = spawn()?;
        Ok((link, child))
    }
    fn child(&self, job: &Job) -> io::Result<Self::L> {
        self.open(job, false)
    }
}

impl Link for IoxLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        if !self.connected {
            // The peer's subscriber joined before it said `ready`.
            self.publ.update_connections().map_err(ierr)?;
            self.connected = true;
        }
        let sample = self.publ.loan_slice_uninit(msg.len()).map_err(ierr)?;
        sample.write_from_slice(msg).send().map_err(ierr)?;
        if let Some(n) = &self.notifier {
            n.notify().map_err(ierr)?;
        }
        Ok(())
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(sample) = self.sub.receive().map_err(ierr)? {
                let p = sample.payload();
                buf[..p.len()].copy_from_slice(p);
                return Ok(p.len());
            }
            match (&self.listener, self.mode) {
                (Some(l), Iox2::Event) => {
                    l.blocking_wait(|_| {}).map_err(ierr)?;
                }
                _ => std::hint::spin_loop(),
            }
        }
    }
}

/// Whether `transport` can carry a `workload` of `size`-byte messages.
pub fn supports(transport: &str, workload: Workload, size: usize) -> bool {
    match transport {
        // Seqpacket messages must fit the socket buffer (wmem_max).
        "uds-seqpacket" => size <= 64 << 10,
        "floor-ring" => workload == Workload::Throughput,
        "floor-lines" => workload == Workload::Latency && size <= (1 << 20) - 16,
        _ => true,
    }
}

/// iceoryx2 request-response of `[u8]` slices (`iox2-rpc`): the parent's
/// client sends a request and busy-polls its pending response; the child's
/// server busy-polls `receive` and answers with a copy. Compared with
/// `memlane-rpc` (one `Client::call`, which spins briefly and then sleeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iox2Rpc;

type IoxClient = iceoryx2::port::client::Client<ipc::Service, [u8], (), [u8], ()>;
type IoxServer = iceoryx2::port::server::Server<ipc::Service, [u8], (), [u8], ()>;
type IoxPending = iceoryx2::pending_response::PendingResponse<ipc::Service, [u8], (), [u8], ()>;
type IoxActive = iceoryx2::active_request::ActiveRequest<ipc::Service, [u8], (), [u8], ()>;

/// One side of the iceoryx2 request-response transport.
pub enum IoxRpcLink {
    /// The parent.
    Client {
        /// Its client port.
        client: IoxClient,
        /// The request in flight.
        pending: Option<IoxPending>,
        /// Dropped last: the ports need their node.
        _node: Node<ipc::Service>,
    },
    /// The child.
    Server {
        /// Its server port.
        server: IoxServer,
        /// The request being answered.
        active: Option<IoxActive>,
        /// Dropped last.
        _node: Node<ipc::Service>,
    },
}

impl Iox2Rpc {
    fn open(job: &Job, parent: bool) -> io::Result<IoxRpcLink> {
        set_log_level(LogLevel::Error);
        let node = NodeBuilder::new().create::<ipc::Service>().map_err(ierr)?;
        let name = ServiceName::new(&format!("memlane-bench/{}/rpc", job.tag)).map_err(ierr)?;
        let service = node
            .service_builder(&name)
            .request_response::<[u8], [u8]>()
            .max_clients(1)
            .max_servers(1)
            .max_active_requests_per_client(2)
            .open_or_create()
            .map_err(ierr)?;
        let len = job.size.max(1);
        Ok(if parent {
            let client = service
                .client_builder()
                .initial_max_slice_len(len)
                .create()
                .map_err(ierr)?;
            IoxRpcLink::Client {
                client,
                pending: None,
                _node: node,
            }
        } else {
            let server = service
                .server_builder()
                .initial_max_slice_len(len)
                .create()
                .map_err(ierr)?;
            IoxRpcLink::Server {
                server,
                active: None,
                _node: node,
            }
        })
    }
}

impl Transport for Iox2Rpc {
    type L = IoxRpcLink;
    fn parent(
        &self,
        job: &Job,
        spawn: &mut dyn FnMut() -> io::Result<ChildProc>,
    ) -> io::Result<(Self::L, ChildProc)> {
        let link = Iox2Rpc::open(job, true)?;
        let child = spawn()?;
        Ok((link, child))
    }
    fn child(&self, job: &Job) -> io::Result<Self::L> {
        Iox2Rpc::open(job, false)
    }
}

impl Link for IoxRpcLink {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            IoxRpcLink::Client {
                client, pending, ..
            } => {
                let req = client.loan_slice_uninit(msg.len()).map_err(ierr)?;
                *pending = Some(req.write_from_slice(msg).send().map_err(ierr)?);
                Ok(())
            }
            IoxRpcLink::Server { active, .. } => {
                let req = active
                    .take()
                    .ok_or_else(|| io::Error::other("a response with no request"))?;
                let resp = req.loan_slice_uninit(msg.len()).map_err(ierr)?;
                resp.write_from_slice(msg).send().map_err(ierr)?;
                Ok(())
            }
        }
    }
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            IoxRpcLink::Client { pending, .. } => {
                let p = pending
                    .take()
                    .ok_or_else(|| io::Error::other("a receive with no request"))?;
                loop {
                    if let Some(resp) = p.receive().map_err(ierr)? {
                        let b = resp.payload();
                        buf[..b.len()].copy_from_slice(b);
                        return Ok(b.len());
                    }
                    std::hint::spin_loop();
                }
            }
            IoxRpcLink::Server { server, active, .. } => loop {
                if let Some(req) = server.receive().map_err(ierr)? {
                    let b = req.payload();
                    let n = b.len();
                    buf[..n].copy_from_slice(b);
                    *active = Some(req);
                    return Ok(n);
                }
                std::hint::spin_loop();
            },
        }
    }
}

//! One member's MQTT connection (rumqttc's sync `Client`): QoS 1, a
//! persistent session (`clean_session = false`, so the broker keeps what
//! arrives while the member is away), manual acknowledgements (a message is
//! acknowledged only once the member has processed and stored it, or put
//! it in its inbox for a later epoch: a kill before that makes the broker
//! deliver it again, which the inbox drops as a duplicate if it was
//! processed after all; the inbox is in memory, so a message of a later
//! epoch held there when the member is killed is lost, and a member that
//! can no longer reach the group's epoch asks to be added again).

use super::super::FleetError;
use super::log::out;
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, Publish, QoS, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Largest MQTT packet either way: a Welcome with the tree of 1,024 leaves.
const MAX_PACKET: usize = 4 << 20;
/// Publishes outstanding and no PUBACK for this long: the connection is
/// dropped and made again (`Transport::unstall`).
const STALL: Duration = Duration::from_secs(30);

/// The topics of group `group` (all under `mls/<group>/`).
#[derive(Clone, Debug)]
pub struct Topics {
    group: String,
}

impl Topics {
    /// The topics of `group`.
    pub fn new(group: &str) -> Self {
        Self { group: group.to_string() }
    }
    /// The committer's stream: relayed proposals and Commits, in its order.
    pub fn handshake(&self) -> String {
        format!("mls/{}/handshake", self.group)
    }
    /// Proposals of devices, for the committer only.
    pub fn proposals(&self) -> String {
        format!("mls/{}/proposals", self.group)
    }
    /// Application messages of every member.
    pub fn application(&self) -> String {
        format!("mls/{}/application", self.group)
    }
    /// KeyPackages of `device` (`+` for all).
    pub fn key_packages(&self, device: &str) -> String {
        format!("mls/{}/keypackages/{device}", self.group)
    }
    /// Welcomes for `device`.
    pub fn welcome(&self, device: &str) -> String {
        format!("mls/{}/welcome/{device}", self.group)
    }
    /// The committer's plain control line (`end <epoch>`): no secret in it.
    pub fn control(&self) -> String {
        format!("mls/{}/control", self.group)
    }
}

fn hex4(d: &[u8]) -> String {
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// A member's connection.
pub struct Transport {
    client: Client,
    connection: Connection,
    /// Fault injection: publish every message twice (a QoS 1 redelivery).
    duplicate: bool,
    /// Publishes handed to the client, and PUBACKs received.
    published: u64,
    acked: u64,
    /// The last packet received, or the first publish after none were
    /// outstanding.
    progress_at: Instant,
    /// How long publishes may wait for a PUBACK before `unstall`.
    stall: Duration,
    /// Bytes of payload published.
    pub bytes_out: u64,
    /// Connections made (1 + reconnections).
    pub connects: u64,
    /// Messages that came before the SUBACKs (a resumed session's queue).
    early: std::collections::VecDeque<Publish>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("published", &self.published).field("acked", &self.acked).finish()
    }
}

fn mqtt(what: &str, e: impl std::fmt::Display) -> FleetError {
    FleetError(format!("MQTT {what}: {e}"))
}

impl Transport {
    /// Connects as `client_id` to `host:port` and subscribes to `topics`
    /// (QoS 1), returning once the broker acknowledged the subscription.
    pub fn connect(host: &str, port: u16, client_id: &str, topics: &[String], duplicate: bool) -> Result<Self, FleetError> {
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_clean_session(false)
            .set_manual_acks(true)
            // Long: a member busy with a backlog does not poll, and a missed PINGRESP
            // drops the connection (seen with 256 devices on 2 cores at 5 s, and
            // with 1,000 threads joining at once at 60 s).
            .set_keep_alive(Duration::from_secs(300))
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_inflight(100);
        let (client, connection) = Client::new(options, 10_000);
        let mut t = Self { client, connection, duplicate, published: 0, acked: 0, progress_at: Instant::now(), stall: STALL, bytes_out: 0, connects: 0, early: Default::default() };
        for topic in topics {
            t.client.subscribe(topic.as_str(), QoS::AtLeastOnce).map_err(|e| mqtt("subscribe", e))?;
        }
        // Until the SUBACKs (queued publishes of a resumed session may come first).
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut subacks = 0;
        while subacks < topics.len() {
            if Instant::now() > deadline {
                return Err(FleetError(format!("MQTT: no SUBACK from {host}:{port} within 20 s")));
            }
            match t.poll(Duration::from_millis(200)) {
                Some(Event::Incoming(Packet::SubAck(_))) => subacks += 1,
                Some(Event::Incoming(Packet::Publish(p))) => t.early.push_back(p),
                _ => {}
            }
        }
        Ok(t)
    }

    /// One event of the connection; `None` on a timeout or a connection
    /// error (after a pause: the next poll reconnects).
    fn poll(&mut self, timeout: Duration) -> Option<Event> {
        match self.connection.recv_timeout(timeout) {
            Ok(Ok(event)) => {
                if let Event::Incoming(_) = &event {
                    self.progress_at = Instant::now();
                }
                match &event {
                    Event::Incoming(Packet::PubAck(_)) => self.acked += 1,
                    Event::Incoming(Packet::ConnAck(c)) => {
                        out!("connected: {c:?}");
                        self.connects += 1
                    }
                    _ => {}
                }
                Some(event)
            }
            Ok(Err(e)) => {
                out!("connection: {e}");
                // Broker gone (restarted, stopped): rumqttc reconnects on
                // the next poll, with the same session.
                std::thread::sleep(Duration::from_millis(100));
                None
            }
            Err(RecvTimeoutError::Timeout) => {
                self.unstall();
                None
            }
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(100));
                None
            }
        }
    }

    /// How long publishes may wait for a PUBACK before the connection is
    /// made again (30 s unless set; a test shortens it).
    pub fn set_stall_limit(&mut self, limit: Duration) {
        self.stall = limit;
    }

    /// Drops the connection when publishes wait for a PUBACK and nothing at
    /// all has come for `STALL`.
    /// Seen with 256 member processes on 2 cores (Mosquitto 2.0.11, rumqttc
    /// 0.25): a few of the gateway's 256 Welcomes of a join stayed
    /// unacknowledged in its client for minutes, no byte queued on either
    /// side of the socket, and the devices they were for waited until the
    /// run gave up; resetting the gateway's TCP connection by hand let all
    /// of them through. `EventLoop::clean` does that reset: the next poll
    /// reconnects, resumes the session and sends again every publish not
    /// acknowledged. A copy the broker already had is delivered twice
    /// (QoS 1), which inboxes drop as duplicates. A silent connection, not
    /// a late PUBACK: the broker queues a PUBACK behind the publishes it is
    /// sending the member, and with 1,000 member threads on 2 cores a member
    /// takes minutes to read 100 of them. The first version, which waited
    /// for the PUBACK alone, reconnected busy members over and over (8,329
    /// reconnections and 1.7 million redelivered duplicates at 1,000
    /// threads, against 4,022 duplicates without it); it also checks only
    /// after a poll that found nothing to read.
    fn unstall(&mut self) {
        if self.published > self.acked && self.progress_at.elapsed() > self.stall {
            out!("connection: {} publishes unacknowledged and nothing received for {:?}, reconnecting", self.published - self.acked, self.stall);
            self.connection.eventloop.clean();
            self.progress_at = Instant::now();
        }
    }

    /// The next message delivered to us, waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<Publish> {
        if let Some(p) = self.early.pop_front() {
            return Some(p);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if let Some(Event::Incoming(Packet::Publish(p))) = self.poll(left) {
                return Some(p);
            }
        }
    }

    /// Acknowledges `p` (PUBACK): the broker forgets it for us.
    pub fn ack(&mut self, p: &Publish) -> Result<(), FleetError> {
        self.client.ack(p).map_err(|e| mqtt("ack", e))
    }

    /// Publishes `payload` to `topic` at QoS 1 (twice with the duplicate fault).
    pub fn publish(&mut self, topic: &str, payload: &[u8]) -> Result<(), FleetError> {
        for _ in 0..if self.duplicate { 2 } else { 1 } {
            out!("publish {topic} {} bytes {}", payload.len(), hex4(&mls_nostd::delivery::digest(payload)));
            self.client.publish(topic, QoS::AtLeastOnce, false, payload).map_err(|e| mqtt("publish", e))?;
            if self.published == self.acked {
                self.progress_at = Instant::now();
            }
            self.published += 1;
            self.bytes_out += payload.len() as u64;
        }
        Ok(())
    }

    /// Waits until the broker acknowledged every publish (or `timeout`),
    /// then disconnects. Messages arriving meanwhile stay with the broker.
    pub fn flush_and_close(mut self, timeout: Duration) -> Result<(), FleetError> {
        let deadline = Instant::now() + timeout;
        while self.acked < self.published {
            if Instant::now() > deadline {
                return Err(FleetError(format!(
                    "MQTT: {} of {} publishes not acknowledged within {timeout:?}",
                    self.published - self.acked,
                    self.published
                )));
            }
            let _ = self.poll(Duration::from_millis(100));
        }
        let _ = self.client.disconnect();
        for _ in 0..10 {
            if matches!(self.connection.recv_timeout(Duration::from_millis(100)), Ok(Err(_)) | Err(RecvTimeoutError::Disconnected)) {
                break;
            }
        }
        Ok(())
    }
}

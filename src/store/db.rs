//! The state database (SQLite, bundled): the inventory — identity with sources, firmware
//! history, destinations — survives a restart, so every baseline does too. Written by the
//! analysis thread in one transaction per batch of changed devices.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::analysis::device::{Destination, Device, Service};
use crate::model::identity::{FirmwareEntry, FirmwareHistory, Identity, Source};

/// 2 added `devices.past_addresses` (a device's addresses before it was renumbered, JSON).
/// 3 added `destinations.bytes_sent`/`bytes_received`/`ports` and the `traffic` table.
const SCHEMA_VERSION: i64 = 3;

/// Hours of estate traffic kept in the `traffic` table (the report's traffic chart): 90 days.
pub const TRAFFIC_HOURS: u64 = 90 * 24;

/// One hour of the devices' traffic with one class of peer (`internal`, `external`,
/// `multicast`, `broadcast`): the flows a device opened or answered that ended or reported in
/// that hour.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrafficHour {
    /// Start of the hour, Unix seconds (packet time).
    pub hour: u64,
    pub class: String,
    pub bytes: u64,
    pub flows: u64,
}

pub struct Store {
    conn: Connection,
    /// A migrated copy of an older database opened read-only, removed on drop.
    scratch: Option<PathBuf>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(p) = self.scratch.take() {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = p.clone().into_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(name);
            }
        }
    }
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: state database: {e}", path.display())
}

impl Store {
    /// Opens the database at `path` and loads the devices it holds. A file SQLite finds corrupt,
    /// or that is not a database at all, does not stop the sensor: it is moved aside as
    /// `<name>.corrupt-<unix seconds>` (with its `-wal` and `-shm`), kept for forensics, and a
    /// fresh database is started. Returns where the old file went, if it was moved.
    pub fn open_or_recover(path: &Path) -> Result<(Self, Vec<Device>, Option<PathBuf>), String> {
        let first = Self::open(path).and_then(|s| s.load().map(|d| (s, d)));
        let err = match first {
            Ok((s, d)) => return Ok((s, d, None)),
            Err(e) if e.contains("malformed") || e.contains("not a database") => e,
            Err(e) => return Err(e),
        };
        let secs =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let aside = path.with_file_name(format!("{name}.corrupt-{secs}"));
        std::fs::rename(path, &aside).map_err(|e| format!("{err}; moving it aside failed: {e}"))?;
        for suffix in ["-wal", "-shm"] {
            let side = path.with_file_name(format!("{name}{suffix}"));
            if side.exists() {
                let _ =
                    std::fs::rename(&side, aside.with_file_name(format!("{name}.corrupt-{secs}{suffix}")));
            }
        }
        let store = Self::open(path)?;
        Ok((store, Vec::new(), Some(aside)))
    }

    pub fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(path, e))?;
        }
        // Created 0600 before SQLite opens it: the inventory maps the estate. SQLite gives its
        // -wal and -shm files the database file's mode.
        std::os::unix::fs::OpenOptionsExt::mode(std::fs::OpenOptions::new().create(true).append(true), 0o600)
            .open(path)
            .map_err(|e| err(path, e))?;
        let conn = Connection::open(path).map_err(|e| err(path, e))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS devices (
                 ip TEXT PRIMARY KEY, mac TEXT, organization TEXT,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, identity TEXT NOT NULL,
                 past_addresses TEXT NOT NULL DEFAULT '[]');
             CREATE TABLE IF NOT EXISTS firmware_history (
                 ip TEXT NOT NULL, version TEXT NOT NULL, source TEXT NOT NULL,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, PRIMARY KEY (ip, version));
             CREATE TABLE IF NOT EXISTS destinations (
                 ip TEXT NOT NULL, dest TEXT NOT NULL, name TEXT, port INTEGER NOT NULL, proto INTEGER NOT NULL,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, flows INTEGER NOT NULL,
                 bytes_sent INTEGER NOT NULL DEFAULT 0, bytes_received INTEGER NOT NULL DEFAULT 0,
                 ports TEXT NOT NULL DEFAULT '[]',
                 PRIMARY KEY (ip, dest));
             CREATE TABLE IF NOT EXISTS traffic (
                 hour INTEGER NOT NULL, class TEXT NOT NULL, bytes INTEGER NOT NULL, flows INTEGER NOT NULL,
                 PRIMARY KEY (hour, class));
             CREATE TABLE IF NOT EXISTS services (
                 ip TEXT NOT NULL, proto INTEGER NOT NULL, port INTEGER NOT NULL,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, flows INTEGER NOT NULL,
                 PRIMARY KEY (ip, proto, port));",
        )
        .map_err(|e| err(path, e))?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| err(path, e))?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| err(path, e))?;
            }
            Some(Ok(SCHEMA_VERSION)) => {}
            Some(Ok(1 | 2)) => {
                // `CREATE TABLE IF NOT EXISTS` above left old tables as they were (and made the
                // missing ones whole): add the columns they lack.
                let added = [
                    ("devices", "past_addresses", "TEXT NOT NULL DEFAULT '[]'"),
                    ("destinations", "bytes_sent", "INTEGER NOT NULL DEFAULT 0"),
                    ("destinations", "bytes_received", "INTEGER NOT NULL DEFAULT 0"),
                    ("destinations", "ports", "TEXT NOT NULL DEFAULT '[]'"),
                ];
                let mut steps = String::from("BEGIN;");
                for (table, column, ddl) in added {
                    let has: i64 = conn
                        .query_row(
                            "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
                            [table, column],
                            |r| r.get(0),
                        )
                        .map_err(|e| err(path, e))?;
                    if has == 0 {
                        steps.push_str(&format!("ALTER TABLE {table} ADD COLUMN {column} {ddl};"));
                    }
                }
                steps.push_str("UPDATE meta SET value = '3' WHERE key = 'schema_version'; COMMIT;");
                conn.execute_batch(&steps).map_err(|e| err(path, e))?;
            }
            Some(_) => {
                return Err(err(
                    path,
                    format!("unknown schema version {version:?}; expected {SCHEMA_VERSION}"),
                ))
            }
        }
        Ok(Self { conn, scratch: None })
    }

    /// Opens the database for reading only (the review commands and the web view): nothing is
    /// written to it and its schema is left as it is. A database on read-only storage, where
    /// SQLite cannot make its shared-memory file, is opened as immutable. An older schema is
    /// read from a migrated copy in the temporary directory (`VACUUM INTO`, which only reads).
    pub fn open_read_only(path: &Path) -> Result<Self, String> {
        use rusqlite::OpenFlags;
        if !path.is_file() {
            return Err(err(path, "no such file"));
        }
        let flags =
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let version = |c: &Connection| -> Result<Option<String>, rusqlite::Error> {
            c.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()
        };
        let opened = Connection::open_with_flags(path, flags).and_then(|c| version(&c).map(|v| (c, v)));
        let (conn, version) = match opened {
            Ok(x) => x,
            Err(_) => {
                // Percent-encode what a URI path cannot hold as is.
                let mut uri = String::from("file:");
                for b in path.as_os_str().as_encoded_bytes() {
                    match b {
                        b'%' | b'?' | b'#' => uri.push_str(&format!("%{b:02X}")),
                        _ => uri.push(char::from(*b)),
                    }
                }
                uri.push_str("?immutable=1");
                let c = Connection::open_with_flags(&uri, flags).map_err(|e| err(path, e))?;
                let v = version(&c).map_err(|e| err(path, e))?;
                (c, v)
            }
        };
        match version.as_deref().map(str::parse::<i64>) {
            Some(Ok(SCHEMA_VERSION)) => Ok(Self { conn, scratch: None }),
            Some(Ok(1 | 2)) => {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let copy =
                    std::env::temp_dir().join(format!("camwatch-review-{}-{secs}.db", std::process::id()));
                // Empty and 0600 before SQLite writes it (the inventory maps the estate).
                std::os::unix::fs::OpenOptionsExt::mode(
                    std::fs::OpenOptions::new().write(true).create_new(true),
                    0o600,
                )
                .open(&copy)
                .map_err(|e| err(&copy, e))?;
                if let Err(e) = conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()]) {
                    let _ = std::fs::remove_file(&copy);
                    return Err(err(path, e));
                }
                drop(conn);
                let mut store = Self::open(&copy).inspect_err(|_| {
                    let _ = std::fs::remove_file(&copy);
                })?;
                store.scratch = Some(copy);
                Ok(store)
            }
            _ => Err(err(path, format!("unknown schema version {version:?}; expected {SCHEMA_VERSION}"))),
        }
    }

    /// Every stored device.
    pub fn load(&self) -> Result<Vec<Device>, String> {
        let q = |e: rusqlite::Error| format!("state database: {e}");
        let mut stmt = self
            .conn
            .prepare(
                "SELECT ip, mac, organization, first_seen, last_seen, identity, past_addresses FROM devices ORDER BY ip",
            )
            .map_err(q)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(q)?;
        let mut out = Vec::new();
        for row in rows {
            let (ip, mac, organization, first, last, identity, past) = row.map_err(q)?;
            let Ok(ip) = ip.parse::<IpAddr>() else { continue };
            let identity: Identity = serde_json::from_str(&identity).unwrap_or_default();
            let mut d = Device {
                ip,
                mac: mac.as_deref().and_then(crate::model::event::parse_mac),
                organization,
                first_seen: u64::try_from(first).unwrap_or(0),
                last_seen: u64::try_from(last).unwrap_or(0),
                last_sent: None,
                identity,
                firmware: FirmwareHistory::default(),
                destinations: Default::default(),
                services: Default::default(),
                unexpected: Default::default(),
                past_addresses: past.and_then(|p| serde_json::from_str(&p).ok()).unwrap_or_default(),
            };
            let ips = ip.to_string();
            let mut fw = self
                .conn
                .prepare_cached(
                    "SELECT version, source, first_seen, last_seen FROM firmware_history WHERE ip = ?1 ORDER BY first_seen",
                )
                .map_err(q)?;
            let entries = fw
                .query_map([&ips], |r| {
                    Ok(FirmwareEntry {
                        version: r.get(0)?,
                        source: Source::parse(&r.get::<_, String>(1)?).unwrap_or(Source::Http),
                        first_seen: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        last_seen: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                    })
                })
                .map_err(q)?;
            for e in entries {
                d.firmware.entries.push(e.map_err(q)?);
            }
            let mut ds = self
                .conn
                .prepare_cached(
                    "SELECT dest, name, port, proto, first_seen, last_seen, flows, bytes_sent, bytes_received,
                     ports FROM destinations WHERE ip = ?1",
                )
                .map_err(q)?;
            let dests = ds
                .query_map([&ips], |r| {
                    let port = u16::try_from(r.get::<_, i64>(2)?).unwrap_or(0);
                    let proto = u8::try_from(r.get::<_, i64>(3)?).unwrap_or(0);
                    let mut ports: std::collections::BTreeSet<(u8, u16)> =
                        serde_json::from_str(&r.get::<_, String>(9)?).unwrap_or_default();
                    if ports.is_empty() {
                        ports.insert((proto, port));
                    }
                    Ok((
                        r.get::<_, String>(0)?,
                        Destination {
                            name: r.get(1)?,
                            port: u16::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                            proto: u8::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                            first_seen: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                            last_seen: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                            flows: u64::try_from(r.get::<_, i64>(6)?).unwrap_or(0),
                            bytes_sent: u64::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                            bytes_received: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
                            ports,
                        },
                    ))
                })
                .map_err(q)?;
            for row in dests {
                let (dest, info) = row.map_err(q)?;
                if let Ok(dest) = dest.parse() {
                    d.destinations.insert(dest, info);
                }
            }
            let mut sv = self
                .conn
                .prepare_cached(
                    "SELECT proto, port, first_seen, last_seen, flows FROM services WHERE ip = ?1",
                )
                .map_err(q)?;
            let services = sv
                .query_map([&ips], |r| {
                    Ok((
                        (
                            u8::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                            u16::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        ),
                        Service {
                            first_seen: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                            last_seen: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                            flows: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                        },
                    ))
                })
                .map_err(q)?;
            for row in services {
                let (key, s) = row.map_err(q)?;
                d.services.insert(key, s);
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Deletes everything stored for an address (its device moved to another).
    pub fn remove(&mut self, ip: IpAddr) -> Result<(), String> {
        let q = |e: rusqlite::Error| format!("state database: {e}");
        let ip = ip.to_string();
        let tx = self.conn.transaction().map_err(q)?;
        for table in ["devices", "firmware_history", "destinations", "services"] {
            tx.execute(&format!("DELETE FROM {table} WHERE ip = ?1"), [&ip]).map_err(q)?;
        }
        tx.commit().map_err(q)
    }

    /// Writes the given devices in one transaction.
    pub fn save<'a>(&mut self, devices: impl Iterator<Item = &'a Device>) -> Result<(), String> {
        let q = |e: rusqlite::Error| format!("state database: {e}");
        let i64_of = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let tx = self.conn.transaction().map_err(q)?;
        {
            let mut dev = tx
                .prepare_cached(
                    "INSERT INTO devices (ip, mac, organization, first_seen, last_seen, identity, past_addresses)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT(ip) DO UPDATE SET mac = excluded.mac, organization = excluded.organization,
                     first_seen = excluded.first_seen, last_seen = excluded.last_seen, identity = excluded.identity,
                     past_addresses = excluded.past_addresses",
                )
                .map_err(q)?;
            let mut fw = tx
                .prepare_cached(
                    "INSERT INTO firmware_history (ip, version, source, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(ip, version) DO UPDATE SET last_seen = excluded.last_seen, first_seen = excluded.first_seen",
                )
                .map_err(q)?;
            let mut ds = tx
                .prepare_cached(
                    "INSERT INTO destinations (ip, dest, name, port, proto, first_seen, last_seen, flows,
                     bytes_sent, bytes_received, ports)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                     ON CONFLICT(ip, dest) DO UPDATE SET name = excluded.name, last_seen = excluded.last_seen,
                     flows = excluded.flows, bytes_sent = excluded.bytes_sent,
                     bytes_received = excluded.bytes_received, ports = excluded.ports",
                )
                .map_err(q)?;
            let mut sv = tx
                .prepare_cached(
                    "INSERT INTO services (ip, proto, port, first_seen, last_seen, flows) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(ip, proto, port) DO UPDATE SET last_seen = excluded.last_seen, flows = excluded.flows",
                )
                .map_err(q)?;
            for d in devices {
                let ip = d.ip.to_string();
                let identity =
                    serde_json::to_string(&d.identity).map_err(|e| format!("state database: {e}"))?;
                let past =
                    serde_json::to_string(&d.past_addresses).map_err(|e| format!("state database: {e}"))?;
                dev.execute(params![
                    ip,
                    d.mac.map(crate::model::event::format_mac),
                    d.organization,
                    i64_of(d.first_seen),
                    i64_of(d.last_seen),
                    identity,
                    past
                ])
                .map_err(q)?;
                for e in &d.firmware.entries {
                    fw.execute(params![
                        ip,
                        e.version,
                        e.source.as_str(),
                        i64_of(e.first_seen),
                        i64_of(e.last_seen)
                    ])
                    .map_err(q)?;
                }
                for ((proto, port), s) in &d.services {
                    sv.execute(params![
                        ip,
                        i64::from(*proto),
                        i64::from(*port),
                        i64_of(s.first_seen),
                        i64_of(s.last_seen),
                        i64_of(s.flows)
                    ])
                    .map_err(q)?;
                }
                for (dest, e) in &d.destinations {
                    ds.execute(params![
                        ip,
                        dest.to_string(),
                        e.name,
                        i64::from(e.port),
                        i64::from(e.proto),
                        i64_of(e.first_seen),
                        i64_of(e.last_seen),
                        i64_of(e.flows),
                        i64_of(e.bytes_sent),
                        i64_of(e.bytes_received),
                        serde_json::to_string(&e.ports).unwrap_or_else(|_| "[]".into())
                    ])
                    .map_err(q)?;
                }
            }
        }
        tx.commit().map_err(q)
    }

    /// Adds hours of traffic (summed into what is stored) and forgets hours more than
    /// [`TRAFFIC_HOURS`] before the newest stored. Hours more than a day ahead of `now` (Unix
    /// seconds) are not stored: one packet from a wrong clock must not age out the history.
    /// Returns how many hours were refused so.
    pub fn add_traffic(&mut self, hours: &[TrafficHour], now: u64) -> Result<usize, String> {
        let q = |e: rusqlite::Error| format!("state database: {e}");
        let i64_of = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let limit = now.saturating_add(86_400);
        let refused = hours.iter().filter(|h| h.hour > limit).count();
        if hours.len() == refused {
            return Ok(refused);
        }
        let tx = self.conn.transaction().map_err(q)?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO traffic (hour, class, bytes, flows) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(hour, class) DO UPDATE SET bytes = bytes + excluded.bytes,
                     flows = flows + excluded.flows",
                )
                .map_err(q)?;
            for h in hours.iter().filter(|h| h.hour <= limit) {
                add.execute(params![i64_of(h.hour), h.class, i64_of(h.bytes), i64_of(h.flows)]).map_err(q)?;
            }
            let newest: i64 =
                tx.query_row("SELECT COALESCE(MAX(hour), 0) FROM traffic", [], |r| r.get(0)).map_err(q)?;
            let oldest = newest.saturating_sub(i64_of(TRAFFIC_HOURS * 3600));
            tx.execute("DELETE FROM traffic WHERE hour < ?1", [oldest]).map_err(q)?;
        }
        tx.commit().map_err(q)?;
        Ok(refused)
    }

    /// The stored hours of traffic, oldest first.
    pub fn traffic(&self) -> Result<Vec<TrafficHour>, String> {
        let q = |e: rusqlite::Error| format!("state database: {e}");
        let mut stmt = self
            .conn
            .prepare("SELECT hour, class, bytes, flows FROM traffic ORDER BY hour, class")
            .map_err(q)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TrafficHour {
                    hour: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    class: r.get(1)?,
                    bytes: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    flows: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            })
            .map_err(q)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::identity::Observation;

    #[test]
    fn inventory_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        let ip: IpAddr = "192.168.10.11".parse().unwrap_or_else(|e| panic!("{e}"));
        let mut inv =
            crate::analysis::device::Inventory::new(crate::model::netset::NetSet::private(), 10, 10);
        inv.observe(ip, Some([0x44, 0x47, 0xcc, 1, 2, 3]), 10);
        let obs = Observation {
            model: Some("DS-2CD2143G2-I".into()),
            firmware: Some("V5.7.3 build 220112".into()),
            ..Observation::default()
        };
        inv.identify(ip, Source::Sadp, &obs, 20);
        inv.contacted(
            ip,
            "203.0.113.5".parse().unwrap_or_else(|e| panic!("{e}")),
            443,
            6,
            Some("x.example"),
            30,
        );
        assert_eq!(inv.served(ip, 554, 6, 40), Some(true));
        assert_eq!(inv.served(ip, 554, 6, 50), Some(false));
        {
            let mut s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
            let dirty = inv.take_dirty();
            s.save(dirty.iter().filter_map(|ip| inv.get(*ip))).unwrap_or_else(|e| panic!("{e}"));
        }
        let s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let loaded = s.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.len(), 1);
        let d = &loaded[0];
        assert_eq!(
            Some(d),
            inv.get(ip)
                .map(|d| {
                    let mut d = d.clone();
                    d.unexpected.clear();
                    d
                })
                .as_ref()
        );
        assert_eq!(d.model(), Some("DS-2CD2143G2-I"));
        assert_eq!(d.firmware.entries.len(), 1);
        assert_eq!(d.destinations.len(), 1);
        let rtsp = d.services.get(&(6, 554)).copied();
        assert_eq!(rtsp, Some(crate::analysis::device::Service { first_seen: 40, last_seen: 50, flows: 2 }));
        // A device that moved to another address leaves nothing behind at the old one.
        let mut s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        s.remove(ip).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.load().unwrap_or_else(|e| panic!("{e}")).is_empty());
        for table in ["firmware_history", "destinations", "services"] {
            let n: i64 = s
                .conn
                .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(n, 0, "{table}");
        }
    }

    /// Writes a version 1 database (before past addresses) holding one device.
    fn version_1_database(path: &Path, mac: Option<&str>) {
        let c = Connection::open(path).unwrap_or_else(|e| panic!("{e}"));
        c.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             CREATE TABLE devices (
                 ip TEXT PRIMARY KEY, mac TEXT, organization TEXT,
                 first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, identity TEXT NOT NULL);",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        c.execute("INSERT INTO devices VALUES ('192.168.10.31', ?1, NULL, 1, 2, '{}')", [mac])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// A version 1 database (before past addresses) is migrated in place, its devices kept; a
    /// device's past addresses survive a restart.
    #[test]
    fn a_version_1_database_is_migrated_and_past_addresses_are_kept() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        version_1_database(&path, Some("e0:ca:3c:20:30:01"));
        let mut s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = s.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].mac, Some([0xe0, 0xca, 0x3c, 0x20, 0x30, 0x01]));
        let past = crate::analysis::device::PastAddress {
            ip: "192.168.10.12".parse().unwrap_or_else(|e| panic!("{e}")),
            first_seen: 1,
            until: 2,
        };
        loaded[0].past_addresses.push(past);
        s.save(loaded.iter()).unwrap_or_else(|e| panic!("{e}"));
        drop(s);
        let again = Store::open(&path).and_then(|s| s.load()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again[0].past_addresses, vec![past]);
    }

    #[test]
    fn a_version_2_database_gains_byte_counts_and_traffic_adds_up_and_ages_out() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        {
            let c = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
            c.execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', '2');
                 CREATE TABLE devices (
                     ip TEXT PRIMARY KEY, mac TEXT, organization TEXT,
                     first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, identity TEXT NOT NULL,
                     past_addresses TEXT NOT NULL DEFAULT '[]');
                 CREATE TABLE destinations (
                     ip TEXT NOT NULL, dest TEXT NOT NULL, name TEXT, port INTEGER NOT NULL, proto INTEGER NOT NULL,
                     first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, flows INTEGER NOT NULL,
                     PRIMARY KEY (ip, dest));
                 INSERT INTO devices VALUES ('192.168.10.31', NULL, NULL, 1, 2, '{}', '[]');
                 INSERT INTO destinations VALUES ('192.168.10.31', '203.0.113.5', NULL, 443, 6, 1, 2, 3);",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let mut s = Store::open(&path).unwrap_or_else(|e| panic!("{e}"));
        let mut loaded = s.load().unwrap_or_else(|e| panic!("{e}"));
        let dest = "203.0.113.5".parse().unwrap_or_else(|e| panic!("{e}"));
        let d = loaded[0].destinations.get_mut(&dest).unwrap_or_else(|| panic!("destination lost"));
        assert_eq!((d.flows, d.bytes_sent, d.bytes_received), (3, 0, 0));
        d.bytes_sent = 1_000;
        d.bytes_received = 2_000;
        s.save(loaded.iter()).unwrap_or_else(|e| panic!("{e}"));
        let hour = |h: u64, class: &str, bytes: u64| TrafficHour {
            hour: h * 3600,
            class: class.into(),
            bytes,
            flows: 1,
        };
        let now = 100 * 24 * 3600;
        s.add_traffic(&[hour(10, "external", 5), hour(10, "internal", 7)], now)
            .unwrap_or_else(|e| panic!("{e}"));
        s.add_traffic(&[hour(10, "external", 6)], now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.traffic().unwrap_or_else(|e| panic!("{e}")),
            vec![
                TrafficHour { hour: 36_000, class: "external".into(), bytes: 11, flows: 2 },
                hour(10, "internal", 7)
            ]
        );
        // A far-future hour (a wrong clock) is refused and ages nothing out.
        let refused = s.add_traffic(&[hour(1_000_000, "external", 1)], now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refused, 1);
        assert_eq!(s.traffic().unwrap_or_else(|e| panic!("{e}")).len(), 2);
        // An hour past the retention pushes hour 10 out.
        s.add_traffic(&[hour(11 + TRAFFIC_HOURS, "external", 1)], now).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.traffic().unwrap_or_else(|e| panic!("{e}")),
            vec![hour(11 + TRAFFIC_HOURS, "external", 1)]
        );
        drop(s);
        let again = Store::open(&path).and_then(|s| s.load()).unwrap_or_else(|e| panic!("{e}"));
        let d = &again[0].destinations[&dest];
        assert_eq!((d.bytes_sent, d.bytes_received), (1_000, 2_000));
    }

    #[test]
    fn a_read_only_open_changes_nothing_and_reads_an_older_schema_from_a_copy() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        version_1_database(&path, None);
        let before = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let scratch = {
            let s = Store::open_read_only(&path).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.load().unwrap_or_else(|e| panic!("{e}")).len(), 1);
            assert!(s.traffic().unwrap_or_else(|e| panic!("{e}")).is_empty());
            s.scratch.clone().unwrap_or_else(|| panic!("no copy was made"))
        };
        assert_eq!(std::fs::read(&path).unwrap_or_else(|e| panic!("{e}")), before, "the original changed");
        assert!(!scratch.exists(), "the copy was left behind");
        // A current database is read in place, and a missing one is an error, not a new file.
        let current = dir.path().join("current.db");
        drop(Store::open(&current).unwrap_or_else(|e| panic!("{e}")));
        let s = Store::open_read_only(&current).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.scratch.is_none());
        assert!(s.conn.execute("DELETE FROM devices", []).is_err(), "a read-only store wrote");
        let missing = dir.path().join("missing.db");
        assert!(Store::open_read_only(&missing).is_err());
        assert!(!missing.exists());
    }

    #[test]
    fn a_corrupt_database_is_moved_aside_and_a_fresh_one_started() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"this is not an SQLite database, it was overwritten by mistake".repeat(100))
            .unwrap_or_else(|e| panic!("{e}"));
        let (mut store, devices, aside) = Store::open_or_recover(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(devices.is_empty());
        let aside = aside.unwrap_or_else(|| panic!("not moved aside"));
        assert!(std::fs::read(&aside).unwrap_or_default().starts_with(b"this is not"), "kept for forensics");
        let mut inv =
            crate::analysis::device::Inventory::new(crate::model::netset::NetSet::private(), 10, 10);
        inv.admit("10.0.0.9".parse().unwrap_or_else(|e| panic!("{e}")), None, 5);
        store.save(inv.devices()).unwrap_or_else(|e| panic!("{e}"));
        drop(store);
        let (_, devices, again) = Store::open_or_recover(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((devices.len(), again), (1, None), "the fresh database works");
    }

    #[test]
    fn a_database_from_the_future_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("state.db");
        drop(Store::open(&path));
        let c = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        c.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", [])
            .unwrap_or_else(|e| panic!("{e}"));
        let e = Store::open(&path).err().unwrap_or_default();
        assert!(e.contains("schema version"), "{e}");
        // Not corrupt: an operator's mistake to fix, so it is not moved aside.
        assert!(Store::open_or_recover(&path).is_err());
        assert!(path.exists());
    }
}

//! Application-protocol parsers: pure functions from bytes to typed records, one module per
//! protocol, lenient and bounded (an anomaly is recorded and parsing carries on; nothing here
//! panics or allocates without bound on any input). Parse failures are a short static reason,
//! used as the `reason` of the per-protocol error counter.
//!
//! - [`dns`] (hickory-proto; also mDNS, and the passive DNS map), [`dhcp`] (dhcproto),
//!   [`ntp`], [`ssdp`]
//! - [`tls`] (ClientHello via tls-parser, JA3, JA4), [`http`] (httparse), [`rtsp`]
//! - camera protocols: [`sadp`] (Hikvision), [`dhip`] (Dahua), [`onvif`] (device information
//!   and WS-Discovery), [`isapi`] (Hikvision ISAPI bodies, Dahua magicBox), and [`firmware`]
//!   (vendor-aware versions, `digicap.dav` headers, firmware file names)

pub mod baichuan;
pub mod dhcp;
pub mod dhip;
pub mod dns;
pub mod firmware;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod hostile;
pub mod http;
pub mod isapi;
pub mod multipart;
pub mod ntp;
pub mod onvif;
mod record;
pub mod rtsp;
pub mod sadp;
pub mod ssdp;
pub mod tls;
mod xml;

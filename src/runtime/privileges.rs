//! Dropping root once the capture handles are open. Capture needs root (or CAP_NET_RAW);
//! nothing after it does: outputs, the state database, the sinks and the endpoint's connections
//! all run as the configured user, so a parser bug an attacker finds does not hand over root.

use anyhow::{anyhow, bail, Context as _};
use nix::unistd::{setgid, setgroups, setuid, Uid, User};

/// Switches the whole process (every thread) to `user`, with its primary group and no
/// supplementary groups. Nothing to do when it already runs as `user`.
pub fn drop_to(user: &str) -> anyhow::Result<()> {
    let u = User::from_name(user)
        .with_context(|| format!("cannot look up user {user}"))?
        .ok_or_else(|| anyhow!("no such user: {user}"))?;
    if Uid::effective() == u.uid {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        bail!("cannot switch to user {user}: camwatch is not running as root");
    }
    setgroups(&[u.gid]).with_context(|| format!("cannot drop supplementary groups for {user}"))?;
    setgid(u.gid).with_context(|| format!("cannot switch to the group of {user}"))?;
    setuid(u.uid).with_context(|| format!("cannot switch to user {user}"))?;
    // A process that can take root back has not given it up.
    if setuid(Uid::from_raw(0)).is_ok() {
        bail!("still able to regain root after switching to {user}");
    }
    tracing::info!(user, uid = u.uid.as_raw(), "Capture open; running as {user} from here on.");
    Ok(())
}

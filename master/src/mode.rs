//! How faithfully a call imitates the real Autotest master (§11), and who
//! makes it.
//!
//! The strict mode is the reference master's own: one transaction per call,
//! a job never taken from another shard, no access control. It is what the
//! demos and chaos tests run against, because its rules are the ones the
//! client's guarantees are stated in. The upstream mode does what the real
//! master does where a client can see the difference.

use sea_orm::ConnectionTrait;

use crate::Fault;
use crate::acl::{self, User};

/// The rules a master answers by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// The reference master's stricter rules (the default).
    #[default]
    Strict,
    /// The real master's observed behaviour (§11).
    Upstream,
}

impl Mode {
    /// Whether a heartbeat runs in one transaction (all or nothing).
    pub fn is_transactional(self) -> bool {
        self == Mode::Strict
    }

    /// The exception class of an upload the master does not have: renamed
    /// in later masters.
    pub(crate) fn unallowed_records(self) -> &'static str {
        match self {
            Mode::Strict => "UnallowedRecordsSentToMaster",
            Mode::Upstream => "UnallowedRecordsSentToMain",
        }
    }
}

/// One call: the mode it is answered in and, in upstream mode, the user
/// named by the `AUTHORIZATION` header, whose access is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    /// The rules.
    pub mode: Mode,
    /// The calling user; `None` checks no access (always so in strict mode).
    pub user: Option<User>,
}

impl Call {
    /// A call answered by the strict rules, as [`crate::shard_heartbeat`] does.
    pub fn strict() -> Call {
        Call::default()
    }

    /// A call in upstream mode by `login` (`debug_user` when the request
    /// named none, as the real master's middleware assumes), creating the
    /// user on first use as the real master does.
    pub async fn upstream(db: &impl ConnectionTrait, login: Option<&str>) -> Result<Call, Fault> {
        let user = acl::user_by_login(db, login.unwrap_or(acl::DEBUG_USER)).await?;
        Ok(Call {
            mode: Mode::Upstream,
            user: Some(user),
        })
    }
}

//! What a [`ScriptedMaster`](crate::ScriptedMaster) answers: a [`Script`] of
//! [`Reply`] steps, one per well-formed request in arrival order, and what
//! to do once the steps run out.

use serde_json::{Value, json};
use shard_model::HeartbeatResponse;

/// One answer of the scripted master.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// HTTP 200, `{"result": <value>, "id": <the request's id>, "error": null}`.
    Result(Value),
    /// Like [`Reply::Result`], the response written in the master's "with
    /// dependencies" shape by its `Serialize`.
    Response(HeartbeatResponse),
    /// HTTP 200 with a JSON-RPC error object (`name`, `message` and a
    /// Python-like `traceback`), as in `fixtures/error-unknown-shard.json`.
    Error {
        /// The exception class, e.g. `DoesNotExist`.
        name: String,
        /// The exception's text.
        message: String,
    },
    /// This HTTP status with a short plain-text body.
    Status(u16),
    /// This status and these exact bytes, without a `Content-Type`: garbage,
    /// truncated JSON, wrong envelopes.
    Raw {
        /// The HTTP status.
        status: u16,
        /// The whole body.
        body: Vec<u8>,
    },
    /// Read the request and never answer; the connection stays open until
    /// the master shuts down.
    Hang,
}

impl Reply {
    /// The result of a heartbeat that has nothing for the shard: four empty
    /// lists.
    pub fn empty() -> Reply {
        Reply::Result(empty_result())
    }

    /// A JSON-RPC error named `name` with text `message`.
    pub fn error(name: impl Into<String>, message: impl Into<String>) -> Reply {
        Reply::Error {
            name: name.into(),
            message: message.into(),
        }
    }
}

/// `{"hosts": [], "jobs": [], "suite_keyvals": [], "incorrect_host_ids": []}`.
pub fn empty_result() -> Value {
    json!({"hosts": [], "jobs": [], "suite_keyvals": [], "incorrect_host_ids": []})
}

/// What a request gets once the script's steps are used up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AfterEnd {
    /// Always this reply.
    Always(Reply),
    /// Wait until a step is pushed for it.
    WaitForPush,
}

/// The replies of a [`ScriptedMaster`](crate::ScriptedMaster), in order, and
/// what comes after them (by default [`Reply::empty`], again and again).
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub(crate) steps: Vec<Reply>,
    pub(crate) after_end: AfterEnd,
}

impl Script {
    /// These steps, then empty results.
    pub fn new(steps: impl IntoIterator<Item = Reply>) -> Script {
        Script {
            steps: steps.into_iter().collect(),
            after_end: AfterEnd::Always(Reply::empty()),
        }
    }

    /// Answers every request after the steps with `reply`.
    pub fn then_always(self, reply: Reply) -> Script {
        Script {
            after_end: AfterEnd::Always(reply),
            ..self
        }
    }

    /// Holds every request after the steps until the test pushes a step for
    /// it ([`ScriptedMaster::push`](crate::ScriptedMaster::push)), so a test
    /// can look at request N before it decides reply N.
    pub fn then_wait_for_push(self) -> Script {
        Script {
            after_end: AfterEnd::WaitForPush,
            ..self
        }
    }
}

impl Default for Script {
    /// No steps: every request gets an empty result.
    fn default() -> Script {
        Script::new([])
    }
}

impl From<Vec<Reply>> for Script {
    fn from(steps: Vec<Reply>) -> Script {
        Script::new(steps)
    }
}

impl<const N: usize> From<[Reply; N]> for Script {
    fn from(steps: [Reply; N]) -> Script {
        Script::new(steps)
    }
}

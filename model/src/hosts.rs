//! The AFE's `get_hosts` RPC, as far as a shard uses it: which of the host
//! ids it knows still exist on the master (§11: a host deleted on the
//! master fails every heartbeat of a shard that still reports it).

use serde::{Deserialize, Serialize};

use crate::value;

/// `params[0]` of a `get_hosts` call: the hosts with these ids, invalid
/// ones included, so that only hosts the master has deleted are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetHostsRequest {
    /// Django's `id__in` filter.
    #[serde(rename = "id__in")]
    pub id_in: Vec<i32>,
    /// False: invalid (soft-deleted) hosts are listed too.
    pub valid_only: bool,
}

impl GetHostsRequest {
    /// Every host among `ids`, valid or not.
    pub fn ids(ids: Vec<i32>) -> Self {
        GetHostsRequest {
            id_in: ids,
            valid_only: false,
        }
    }
}

/// One element of `get_hosts`' result. A real master sends a whole host
/// object; only its id matters here, every other key is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ListedHost {
    /// The host's id on the master.
    #[serde(deserialize_with = "value::int")]
    pub id: i32,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_request_carries_the_django_filter_names() {
        let request = serde_json::to_value(GetHostsRequest::ids(vec![3, 7])).unwrap();
        assert_eq!(
            request,
            serde_json::json!({"id__in": [3, 7], "valid_only": false})
        );
    }

    #[test]
    fn a_listed_host_keeps_its_id_and_ignores_the_rest() {
        let hosts: Vec<ListedHost> = serde_json::from_str(
            r#"[{"id": 3, "hostname": "h3", "labels": ["board:x"], "attributes": {}},
                {"id": "7", "invalid": 1}]"#,
        )
        .unwrap();
        assert_eq!(hosts, vec![ListedHost { id: 3 }, ListedHost { id: 7 }]);
    }

    #[test]
    fn a_host_without_an_id_is_an_error() {
        let parsed = serde_json::from_str::<Vec<ListedHost>>(r#"[{"hostname": "h3"}]"#);
        assert!(parsed.is_err());
    }
}

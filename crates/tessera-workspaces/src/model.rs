//! The stored records (the original's tables) and their wire forms.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The Django group whose members may log users in (`POST /tokens/` in local mode).
pub const API_CLIENTS_GROUP: &str = "api_clients";

/// A time as the original stores it: UTC, microsecond precision.
pub fn now_micros(now: DateTime<Utc>) -> DateTime<Utc> {
    now.trunc_subsecs(6)
}

/// Python's `isoformat()` of a naive time: microseconds only when not zero.
pub fn iso_naive(t: &DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// DRF's datetime output: [`iso_naive`] with `Z`.
pub fn iso_z(t: &DateTime<Utc>) -> String {
    format!("{}Z", iso_naive(t))
}

/// A user (Django's `auth_user`, with the external mapping of the storage folded in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The integer id clients address users by.
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The e-mail address.
    pub email: String,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// Last name.
    #[serde(default)]
    pub last_name: String,
    /// Django groups (`api_clients`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The identity at the login provider: the introspected `sub`, or the username in local
    /// mode (the original's `ExternalUserMapping` of the API authentication).
    #[serde(default)]
    pub external_user_id: Option<String>,
    /// What the login provider said about the user (user info plus `globus_groups_token`).
    #[serde(default)]
    pub external_user_details: Value,
    /// When the user was created.
    pub date_joined: DateTime<Utc>,
}

impl User {
    /// `{username, first_name, last_name, email}`: the nested user of the shared listing.
    pub fn nested(&self) -> Value {
        json!({
            "username": self.username,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
        })
    }

    /// `{id, first_name, last_name, username, email}` of `/users/`.
    pub fn listed(&self) -> Value {
        json!({
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "email": self.email,
        })
    }

    /// Whether the user may log others in.
    pub fn is_api_client(&self) -> bool {
        self.groups.iter().any(|g| g == API_CLIENTS_GROUP)
    }
}

/// An API token: 40 hex characters, as DRF's `authtoken_token`; unlike the original it
/// expires (except API-client tokens) and can be revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// The token itself (the id).
    pub key: String,
    /// Whose it is.
    pub user_id: i64,
    /// When it was issued.
    pub created: DateTime<Utc>,
    /// When it stops working; `None` for API-client tokens.
    pub expires: Option<DateTime<Utc>>,
}

/// A workspace's lifecycle (§A4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkspaceStatus {
    /// The row exists, the directory is being made (or a shared copy is being copied).
    Initializing,
    /// Ready, no job running.
    Idle,
    /// A job runs in it.
    Active,
    /// Queued for deletion.
    Deleting,
    /// The directory is unusable.
    Error,
}

impl WorkspaceStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "initializing",
            Self::Idle => "idle",
            Self::Active => "active",
            Self::Deleting => "deleting",
            Self::Error => "error",
        }
    }
}

/// One name in `current_workspace_details`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Named {
    /// The path relative to the workspace, with a leading `/`.
    pub name: String,
}

/// What is in the workspace directory (files and symlinks, dot-names skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentDetails {
    /// Regular files.
    pub files: Vec<Named>,
    /// Symbolic links (to files or folders).
    pub symlinks: Vec<Named>,
}

/// `workspace_details`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceDetails {
    /// What the creating request asked for (file names without contents, symlinks).
    pub request_workspace_details: Value,
    /// What is on disk.
    pub current_workspace_details: CurrentDetails,
}

/// A workspace (§A4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// The integer id.
    pub id: i64,
    /// The owner (`None` once the user is gone).
    pub user_id: Option<i64>,
    /// Name (up to 64 characters in the original).
    pub name: String,
    /// Description.
    pub description: String,
    /// `<os account>/<id>`, relative to the storage root.
    pub file_path: String,
    /// Bytes of regular files, dot-files included, symlinks not followed.
    pub disk_space: i64,
    /// Creation time (reset when a shared copy is accepted).
    pub datetime_created: DateTime<Utc>,
    /// Last change of the files (set by the scan).
    pub datetime_last_modified: Option<DateTime<Utc>>,
    /// Last job start.
    pub datetime_last_job_launch: Option<DateTime<Utc>>,
    /// Job type used when a start names none.
    pub default_job_type: Option<String>,
    /// Lifecycle state.
    pub status: WorkspaceStatus,
    /// Requested and current contents.
    pub workspace_details: WorkspaceDetails,
}

impl Workspace {
    /// The listing form (§A1 fields; datetimes with `Z`, §A10.4).
    pub fn wire(&self) -> Value {
        self.wire_with(iso_z)
    }

    /// The form of the POST reply: naive datetimes without `Z` (§A10.4).
    pub fn wire_naive(&self) -> Value {
        self.wire_with(iso_naive)
    }

    fn wire_with(&self, time: fn(&DateTime<Utc>) -> String) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "disk_space": self.disk_space,
            "datetime_created": time(&self.datetime_created),
            "datetime_last_modified": self.datetime_last_modified.as_ref().map(time),
            "datetime_last_job_launch": self.datetime_last_job_launch.as_ref().map(time),
            "workspace_details": self.workspace_details,
            "status": self.status.as_str(),
            "default_job_type": self.default_job_type,
        })
    }

    /// The nested form inside the shared listing.
    pub fn nested(&self, owner: Option<&User>) -> Value {
        json!({
            "id": self.id,
            "user_id": owner.map(User::nested),
            "name": self.name,
            "description": self.description,
            "workspace_details": self.workspace_details,
        })
    }
}

/// A job's lifecycle (§A4); jobs are launched by the job part of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Queued at the resource.
    Pending,
    /// Running.
    Running,
    /// Asked to stop; sticky until the resource reports an end.
    Stopping,
    /// Ended.
    Complete,
    /// Failed.
    Failed,
}

impl JobStatus {
    /// Whether the job has ended (complete or failed).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }

    /// Whether the job blocks deleting its workspace (§A10.10: pending and running do).
    pub fn blocks_deletion(self) -> bool {
        matches!(self, Self::Pending | Self::Running)
    }
}

/// A job (§A4): the record shape the job part fills in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The integer id.
    pub id: i64,
    /// The owner.
    pub user_id: Option<i64>,
    /// The workspace it runs in.
    pub workspace_id: Option<i64>,
    /// The resource's id; -1 while not launched.
    pub resource_job_id: i64,
    /// The job type key.
    pub job_type: String,
    /// The resource's name.
    pub resource_name: String,
    /// Lifecycle state.
    pub status: JobStatus,
    /// Created.
    pub datetime_created: DateTime<Utc>,
    /// First seen running.
    pub datetime_start: Option<DateTime<Utc>>,
    /// Ended.
    pub datetime_end: Option<DateTime<Utc>>,
    /// Core hours, as the 5-decimal string of the original's `decimal(10,5)`.
    pub core_hours: String,
    /// Options after `parameter_mapping`.
    pub resource_options: Value,
    /// `{metrics, request_job_details, current_job_details}`.
    pub job_details: Value,
    /// The job's web server credential (a JupyterLab token), made by uws at the start and
    /// given to the job; never in the wire form until the server is ready, then only in
    /// the owner's `connection_details.url_path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// A share: the copy workspace and where it came from (§A4 `SharedWorkspaceMapping`).
/// Addressed by the copy's workspace id (§A10.11), which is its id here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// The copy's workspace id.
    pub shared_workspace_id: i64,
    /// The original (`None` once deleted).
    pub original_workspace_id: Option<i64>,
    /// Options of the original's latest job (after `parameter_mapping`).
    pub last_resource_options: Value,
    /// The original's latest job type.
    pub last_job_type: Option<String>,
    /// Whether the recipient accepted.
    pub is_accepted: bool,
    /// When it was shared.
    pub datetime_share_created: DateTime<Utc>,
}

/// Removes the keys a workspace filter does not know; what remains must match exactly.
pub fn workspace_matches(ws: &Workspace, filters: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => ws.name == *v,
        "description" => ws.description == *v,
        "status" => ws.status.as_str() == v,
        _ => true,
    })
}

/// An object from `pairs`.
pub fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn datetimes_print_like_python() {
        let whole = Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 3)
            .single()
            .unwrap_or_default();
        assert_eq!(iso_z(&whole), "2024-05-01T12:00:03Z");
        assert_eq!(iso_naive(&whole), "2024-05-01T12:00:03");
        let frac = whole + chrono::Duration::microseconds(1500);
        assert_eq!(iso_z(&frac), "2024-05-01T12:00:03.001500Z");
    }
}

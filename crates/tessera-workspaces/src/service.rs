//! [`Uws`]: the rules of every route, with the original's messages and check order
//! (§A1, corrected by §A10), and the fixes of §A10.7, §A10.8 and §A10.14.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::{Map, Value, json};

use tokio::sync::broadcast;

use crate::datasets::{self, DatasetResolver, Resolved};
use crate::identity::{self, Identity, Introspector};
use crate::jobs::{JobEvent, JobSettings};
use crate::model::{
    API_CLIENTS_GROUP, CurrentDetails, Named, Share, Token, User, Workspace, WorkspaceDetails,
    WorkspaceStatus, iso_z, now_micros, workspace_matches,
};
use crate::params::py_repr;
use crate::state::Records;
use crate::storage::{self, Account, Entry, EntryName, NameError, Storage};
use crate::worker::{self, Queue, Task};
use crate::{Error, Kind, Result};

/// A request body: the parsed JSON, or the parser's complaint.
pub type Body = std::result::Result<Value, String>;

/// A success: the message and, for most routes, `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The exact message.
    pub message: String,
    /// `data`, when the route has one.
    pub data: Option<Value>,
}

impl Reply {
    fn new(message: impl Into<String>, data: Value) -> Self {
        Self {
            message: message.into(),
            data: Some(data),
        }
    }

    fn bare(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// A reply with `data`.
    pub fn with_data(message: impl Into<String>, data: Value) -> Self {
        Self::new(message, data)
    }

    /// A reply without `data`.
    pub fn bare_message(message: impl Into<String>) -> Self {
        Self::bare(message)
    }
}

/// How `POST /tokens/` logs users in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginMode {
    /// An API client (a member of `api_clients`) vouches for `user_info`.
    Local,
    /// An access token of the login provider, introspected (RFC 7662).
    Introspection {
        /// Groups one of which the user must be in; empty for no check.
        allowed_groups: Vec<String>,
    },
}

/// What the core needs of the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The login mode.
    pub login: LoginMode,
    /// How long a user token lives.
    pub token_lifetime: Duration,
    /// Job types: key to display name.
    pub job_types: BTreeMap<String, String>,
    /// The `parameters` list of the config.
    pub parameters: Value,
    /// Every user's limits.
    pub quota: crate::quota::Quota,
}

/// The time source.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The core.
pub struct Uws {
    pub(crate) records: Records,
    pub(crate) storage: Arc<dyn Storage>,
    introspector: Option<Arc<dyn Introspector>>,
    datasets: Option<Arc<dyn DatasetResolver>>,
    settings: Settings,
    pub(crate) queue: Queue,
    clock: Clock,
    pub(crate) jobs: Option<JobSettings>,
    pub(crate) events: broadcast::Sender<JobEvent>,
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

impl fmt::Debug for Uws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uws")
            .field("settings", &self.settings)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

const NO_ACCOUNT: &str = "User could not be found/created on main storage system.";
const BAD_PATH_DELETE: &str = "Please contact a system administrator there is a failure with \
     the workspace directory that will not allow for this workspace to be deleted.";
const JOBS_RUNNING: &str = "Cannot delete workspace, jobs are running for this workspace.";

fn not_found_for_user(id: i64) -> Error {
    Error::refused(
        Kind::NotFound,
        format!("Workspace {id} not found for user."),
    )
}

fn frozen(id: i64) -> Error {
    Error::bad(format!(
        "Workspace {id} is a shared workspace and has not been accepted."
    ))
}

fn unauthorized(message: &str) -> Error {
    Error::refused(Kind::Unauthorized, message)
}

/// A body that must be a JSON object (§A10.8: anything else is a 400 with the envelope).
fn object(body: Body) -> Result<Map<String, Value>> {
    match body {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::bad("Invalid JSON: expected an object.")),
        Err(why) => Err(Error::bad(format!("Invalid JSON: {why}"))),
    }
}

/// Forty hex characters from 20 random bytes (DRF's token keys).
pub(crate) fn token_key() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of the files among `entries`.
fn written(entries: &[Entry]) -> i64 {
    entries
        .iter()
        .map(|e| match e {
            Entry::File { content, .. } => i64::try_from(content.len()).unwrap_or(i64::MAX),
            Entry::Symlink { .. } => 0,
        })
        .fold(0, i64::saturating_add)
}

/// What `workspace_details` asks for, checked before anything is written.
struct Requested {
    entries: Vec<Entry>,
    request: Value,
}

impl Uws {
    /// The core over `records`, `storage` and (in introspection mode) `introspector`; the
    /// receiver goes to [`Uws::run_worker`].
    pub fn new(
        records: Records,
        storage: Arc<dyn Storage>,
        introspector: Option<Arc<dyn Introspector>>,
        settings: Settings,
        clock: Clock,
    ) -> (Self, worker::Receiver) {
        let (queue, rx) = worker::queue();
        (
            Self {
                records,
                storage,
                introspector,
                datasets: None,
                settings,
                queue,
                clock,
                jobs: None,
                events: crate::jobs::events(),
                closing: tokio::sync::watch::channel(false).0,
            },
            rx,
        )
    }

    /// The core with `dataset_uuid` symlinks resolved by `resolver` (without one they are
    /// 500 "Could not resolve dataset_uuid <uuid>.").
    #[must_use]
    pub fn with_datasets(mut self, resolver: Arc<dyn DatasetResolver>) -> Self {
        self.datasets = Some(resolver);
        self
    }

    /// The core with jobs (a resource, job types, parameters).
    #[must_use]
    pub fn with_jobs(mut self, jobs: JobSettings) -> Self {
        self.jobs = Some(jobs);
        self
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        now_micros((self.clock)())
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The records (for commands and tests).
    pub fn records(&self) -> &Records {
        &self.records
    }

    // ---- tokens and identity -------------------------------------------------------------

    /// The user of a `UWS-Authorization` header value (§A1, §A10.3): `None` without one.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Option<User>> {
        let Some(header) = header else {
            return Ok(None);
        };
        let parts: Vec<&str> = header.split_whitespace().collect();
        let [_, key] = parts.as_slice() else {
            return Err(unauthorized("Invalid auth header format."));
        };
        let now = self.now();
        let tables = self.records.read();
        let user = tables
            .tokens
            .get(*key)
            .filter(|t| t.expires.is_none_or(|e| e > now))
            .and_then(|t| tables.users.get(&t.user_id));
        match user {
            Some(user) => Ok(Some(user.clone())),
            None => Err(unauthorized("Invalid token provided.")),
        }
    }

    /// The caller, or 401 "Authentication credentials were not provided.".
    pub fn require(user: Option<User>) -> Result<User> {
        user.ok_or_else(|| unauthorized("Authentication credentials were not provided."))
    }

    /// `POST /tokens/`: logs a user in and returns their token.
    pub async fn login(&self, body: Body) -> Result<String> {
        let body = match body {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Error::bad("JSON parse error - expected an object.")),
            Err(why) => return Err(Error::bad(format!("JSON parse error - {why}"))),
        };
        let user = match &self.settings.login {
            LoginMode::Local => self.login_local(&body).await?,
            LoginMode::Introspection { allowed_groups } => {
                self.login_introspected(&body, allowed_groups).await?
            }
        };
        self.user_token(&user).await
    }

    async fn login_local(&self, body: &Map<String, Value>) -> Result<User> {
        let Some(client_token) = body.get("client_token") else {
            return Err(Error::bad(
                "Missing client_token. Please have admin generate a token for you.",
            ));
        };
        let Some(user_info) = body.get("user_info") else {
            return Err(Error::bad(
                "Missing user_info. Please provide user_info to get user_token.",
            ));
        };
        let incorrect = || unauthorized("Incorrect authentication credentials.");
        let client = client_token
            .as_str()
            .and_then(|key| {
                self.authenticate(Some(&format!("Token {key}")))
                    .ok()
                    .flatten()
            })
            .filter(User::is_api_client)
            .ok_or_else(incorrect)?;
        let field = |k: &str| {
            user_info
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        let (username, email) = (field("username"), field("email"));
        if username.is_empty() || email.is_empty() {
            return Err(incorrect());
        }
        tracing::info!(client = %client.username, %username, "local login");
        let identity = Identity {
            sub: username.clone(),
            email,
            first_name: field("first_name"),
            last_name: field("last_name"),
            groups: None,
            details: user_info.clone(),
        };
        self.find_or_create(&username, &identity).await
    }

    async fn login_introspected(
        &self,
        body: &Map<String, Value>,
        allowed_groups: &[String],
    ) -> Result<User> {
        let Some(token) = body.get("auth_token").and_then(Value::as_str) else {
            return Err(Error::bad("Missing auth_token."));
        };
        let introspector = self.introspector.as_ref().ok_or_else(|| {
            Error::Identity(identity::Error::Unavailable(
                "no introspection endpoint".into(),
            ))
        })?;
        let identity = match introspector.introspect(token).await {
            Ok(identity) => identity,
            Err(identity::Error::Rejected(why)) => {
                tracing::info!(%why, "login refused");
                return Err(unauthorized("Incorrect authentication credentials."));
            }
            Err(e) => return Err(e.into()),
        };
        if !allowed_groups.is_empty() {
            // Fails closed: no groups reported is no membership.
            let member = identity
                .groups
                .as_ref()
                .is_some_and(|gs| gs.iter().any(|g| allowed_groups.contains(g)));
            if !member {
                return Err(Error::refused(
                    Kind::Forbidden,
                    "User is not a member of the allowed groups.",
                ));
            }
        }
        let username = identity
            .email
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        if username.is_empty() {
            return Err(unauthorized("Incorrect authentication credentials."));
        }
        let mut details = identity.details.clone();
        if let Value::Object(map) = &mut details {
            map.insert(
                "globus_groups_token".into(),
                Value::String(token.to_owned()),
            );
        }
        self.find_or_create(
            &username,
            &Identity {
                details,
                ..identity
            },
        )
        .await
    }

    async fn find_or_create(&self, username: &str, identity: &Identity) -> Result<User> {
        let _write = self.records.lock().await;
        let existing = {
            let tables = self.records.read();
            tables
                .users
                .values()
                .find(|u| u.external_user_id.as_deref() == Some(identity.sub.as_str()))
                .or_else(|| tables.user_named(username))
                .cloned()
        };
        let user = match existing {
            Some(mut user) => {
                user.email.clone_from(&identity.email);
                if !identity.first_name.is_empty() {
                    user.first_name.clone_from(&identity.first_name);
                }
                if !identity.last_name.is_empty() {
                    user.last_name.clone_from(&identity.last_name);
                }
                user.external_user_id = Some(identity.sub.clone());
                user.external_user_details = identity.details.clone();
                self.records.users.update(&user).await?;
                user
            }
            None => {
                let id = self.records.apply(|t| t.user_id());
                let user = User {
                    id,
                    username: username.to_owned(),
                    email: identity.email.clone(),
                    first_name: identity.first_name.clone(),
                    last_name: identity.last_name.clone(),
                    groups: Vec::new(),
                    external_user_id: Some(identity.sub.clone()),
                    external_user_details: identity.details.clone(),
                    date_joined: self.now(),
                };
                self.records.users.insert(&user).await?;
                user
            }
        };
        self.records
            .apply(|t| t.users.insert(user.id, user.clone()));
        Ok(user)
    }

    /// The user's token: the current one while it lives, else a new one.
    async fn user_token(&self, user: &User) -> Result<String> {
        let now = self.now();
        let _write = self.records.lock().await;
        let current: Vec<Token> = self
            .records
            .read()
            .tokens
            .values()
            .filter(|t| t.user_id == user.id)
            .cloned()
            .collect();
        if let Some(live) = current.iter().find(|t| t.expires.is_none_or(|e| e > now)) {
            return Ok(live.key.clone());
        }
        for dead in &current {
            self.records.tokens.delete(&dead.key).await?;
            self.records.apply(|t| t.tokens.remove(&dead.key));
        }
        let token = Token {
            key: token_key(),
            user_id: user.id,
            created: now,
            expires: Some(now + self.settings.token_lifetime),
        };
        self.records.tokens.insert(&token).await?;
        self.records
            .apply(|t| t.tokens.insert(token.key.clone(), token.clone()));
        Ok(token.key)
    }

    /// `DELETE /tokens/`: revokes every token of the caller.
    pub async fn logout(&self, user: &User) -> Result<Reply> {
        let _write = self.records.lock().await;
        self.revoke_tokens_of(user.id).await?;
        Ok(Reply::bare("Successful logout."))
    }

    /// Deletes every token of user `id`; the caller holds the write lock.
    async fn revoke_tokens_of(&self, id: i64) -> Result<()> {
        let keys: Vec<String> = self
            .records
            .read()
            .tokens
            .values()
            .filter(|t| t.user_id == id)
            .map(|t| t.key.clone())
            .collect();
        for key in keys {
            self.records.tokens.delete(&key).await?;
            self.records.apply(|t| t.tokens.remove(&key));
        }
        Ok(())
    }

    /// `uws api-client create`: a user in `api_clients` (made if missing) and a token that
    /// does not expire, replacing any earlier one.
    pub async fn create_api_client(&self, username: &str, email: &str) -> Result<String> {
        if username.trim().is_empty() {
            return Err(Error::bad("the username must not be empty"));
        }
        let _write = self.records.lock().await;
        let existing = self.records.read().user_named(username).cloned();
        let user = match existing {
            Some(mut user) => {
                if !user.is_api_client() {
                    user.groups.push(API_CLIENTS_GROUP.to_owned());
                    self.records.users.update(&user).await?;
                }
                user
            }
            None => {
                let id = self.records.apply(|t| t.user_id());
                let user = User {
                    id,
                    username: username.to_owned(),
                    email: email.to_owned(),
                    first_name: String::new(),
                    last_name: String::new(),
                    groups: vec![API_CLIENTS_GROUP.to_owned()],
                    external_user_id: None,
                    external_user_details: Value::Null,
                    date_joined: self.now(),
                };
                self.records.users.insert(&user).await?;
                user
            }
        };
        self.records
            .apply(|t| t.users.insert(user.id, user.clone()));
        self.revoke_tokens_of(user.id).await?;
        let token = Token {
            key: token_key(),
            user_id: user.id,
            created: self.now(),
            expires: None,
        };
        self.records.tokens.insert(&token).await?;
        self.records
            .apply(|t| t.tokens.insert(token.key.clone(), token.clone()));
        Ok(token.key)
    }

    // ---- workspaces ------------------------------------------------------------------------

    async fn account_of(&self, user: &User) -> Result<Account> {
        match self.storage.account(&user.username).await {
            Ok(account) => Ok(account),
            Err(storage::Error::NoAccount(_)) => Err(Error::bad(NO_ACCOUNT)),
            Err(e) => Err(e.into()),
        }
    }

    fn is_frozen(&self, id: i64) -> bool {
        self.records
            .read()
            .shares
            .get(&id)
            .is_some_and(|s| !s.is_accepted)
    }

    fn owned(&self, user: &User, id: i64) -> Option<Workspace> {
        self.records
            .read()
            .workspaces
            .get(&id)
            .filter(|w| w.user_id == Some(user.id))
            .cloned()
    }

    /// `GET /workspaces/[<id>/]`: the caller's workspaces, unaccepted copies hidden.
    pub fn list_workspaces(
        &self,
        user: &User,
        id: Option<i64>,
        filters: &BTreeMap<String, String>,
    ) -> Reply {
        let tables = self.records.read();
        let listed: Vec<Value> = tables
            .workspaces
            .values()
            .filter(|w| w.user_id == Some(user.id))
            .filter(|w| id.is_none_or(|id| w.id == id))
            .filter(|w| id.is_some() || workspace_matches(w, filters))
            .filter(|w| tables.shares.get(&w.id).is_none_or(|s| s.is_accepted))
            .map(Workspace::wire)
            .collect();
        let message = if listed.is_empty() {
            "Workspace matching given parameters could not be found."
        } else {
            "Successful."
        };
        Reply::new(message, json!({ "workspaces": listed }))
    }

    /// Checks `workspace_details` (symlinks first, then files, as the original creates
    /// them) and resolves symlink sources, before anything is written.
    async fn requested(&self, details: Option<&Value>) -> Result<Requested> {
        let empty = Map::new();
        let details = match details {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(map)) => map,
            Some(_) => return Err(Error::bad("Workspace details not JSON.")),
        };
        let list = |key: &str| -> Result<Vec<Map<String, Value>>> {
            match details.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::Object(map) => Ok(map.clone()),
                        _ => Err(Error::bad(format!(
                            "Invalid workspace details: {key} must be a list of objects."
                        ))),
                    })
                    .collect(),
                Some(_) => Err(Error::bad(format!(
                    "Invalid workspace details: {key} is not a list."
                ))),
            }
        };
        let symlinks = list("symlinks")?;
        let files = list("files")?;
        let name_of = |item: &Map<String, Value>, what: &str| -> Result<EntryName> {
            let raw = item.get("name").and_then(Value::as_str).ok_or_else(|| {
                Error::bad(format!(
                    "Invalid workspace details: every {what} needs a name."
                ))
            })?;
            EntryName::parse(raw).map_err(|e| match e {
                NameError::DoubleDots => {
                    let what = if what == "file" { "File" } else { "Symlink" };
                    Error::bad(format!("{what} name cannot contain double dots."))
                }
                NameError::Invalid => Error::bad(format!("Invalid file path specified {raw}")),
            })
        };
        // Names first: a request refused anyway costs no call of the dataset API.
        let names = symlinks
            .iter()
            .map(|link| name_of(link, "symlink"))
            .collect::<Result<Vec<_>>>()?;
        let datasets = self.datasets(details, &symlinks).await?;
        let mut entries = Vec::with_capacity(symlinks.len() + files.len());
        for (link, name) in symlinks.iter().zip(names) {
            let source = match (link.get("source_path"), link.get("dataset_uuid")) {
                (Some(Value::String(path)), _) => path.clone(),
                (_, Some(Value::String(uuid))) => match datasets.get(uuid.as_str()) {
                    Some(path) => path.clone(),
                    None => {
                        return Err(Error::refused(
                            Kind::Failed,
                            format!("Could not resolve dataset_uuid {uuid}."),
                        ));
                    }
                },
                _ => {
                    return Err(Error::bad(
                        "Invalid workspace details: every symlink needs a source_path.",
                    ));
                }
            };
            let source = match self.storage.check_source(&source).await {
                Ok(resolved) => resolved,
                Err(storage::Error::SourceNotFound(_)) => {
                    return Err(Error::refused(
                        Kind::Failed,
                        format!("Symlink path not found: {source}"),
                    ));
                }
                Err(storage::Error::SourceNotAllowed(_)) => {
                    return Err(Error::bad(format!("Symlink path not allowed: {source}")));
                }
                Err(e) => return Err(e.into()),
            };
            entries.push(Entry::Symlink { name, source });
        }
        for file in &files {
            let name = name_of(file, "file")?;
            let content = match file.get("content") {
                Some(Value::String(s)) => s.clone().into_bytes(),
                None | Some(Value::Null) => Vec::new(),
                Some(_) => {
                    return Err(Error::bad(
                        "Invalid workspace details: file content must be a string.",
                    ));
                }
            };
            entries.push(Entry::File { name, content });
        }
        let request = json!({
            "files": files.iter().map(|f| json!({"name": f.get("name")})).collect::<Vec<_>>(),
            "symlinks": symlinks,
        });
        Ok(Requested { entries, request })
    }

    /// The paths of the `dataset_uuid`s among `symlinks` (symlinks with a `source_path`
    /// need none), asked of the dataset resolver at once with `globus_groups_token`, in
    /// the original's order of checks (§A8.2): token, the API as a whole, then every
    /// uuid's error together.
    async fn datasets(
        &self,
        details: &Map<String, Value>,
        symlinks: &[Map<String, Value>],
    ) -> Result<HashMap<String, String>> {
        let mut uuids: Vec<String> = symlinks
            .iter()
            .filter(|link| !matches!(link.get("source_path"), Some(Value::String(_))))
            .filter_map(|link| link.get("dataset_uuid").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        uuids.sort();
        uuids.dedup();
        let Some(resolver) = self.datasets.as_ref().filter(|_| !uuids.is_empty()) else {
            return Ok(HashMap::new());
        };
        let token = match details.get("globus_groups_token") {
            Some(Value::String(token)) if !token.is_empty() => token,
            _ => {
                return Err(Error::bad(
                    "No globus_groups_token passed when trying to use dataset_uuid.",
                ));
            }
        };
        let failed = |message: String| Error::refused(Kind::Failed, message);
        let answers = resolver.resolve(&uuids, token).await.map_err(|e| {
            tracing::warn!(error = %e, "resolving dataset uuids failed");
            match e {
                datasets::Error::Unreachable(_) => {
                    failed("Could not reach the dataset API.".into())
                }
                datasets::Error::Status { status: 500, body } => {
                    failed(format!("Server side error: {body}"))
                }
                datasets::Error::Status { status, body } => failed(format!(
                    "The dataset API refused the request ({status}): {body}"
                )),
                datasets::Error::Garbage(_) => {
                    failed("Invalid answer from the dataset API.".into())
                }
            }
        })?;
        let mut paths = HashMap::new();
        let mut errors = Vec::new();
        for (uuid, answer) in uuids.into_iter().zip(answers) {
            match answer {
                Resolved::Path(path) => {
                    paths.insert(uuid, path);
                }
                Resolved::Error(why) => errors.push(format!(
                    "{{'uuid': {}, 'error': {}}}",
                    py_repr(&Value::String(uuid)),
                    py_repr(&Value::String(why))
                )),
            }
        }
        if !errors.is_empty() {
            return Err(failed(format!(
                "Errors encountered when attempting to gather UUID information: [{}]",
                errors.join(", ")
            )));
        }
        Ok(paths)
    }

    pub(crate) fn check_job_type(&self, job_type: &str) -> Result<()> {
        if self.settings.job_types.contains_key(job_type) {
            Ok(())
        } else {
            Err(Error::bad(format!(
                "{job_type} is not in the list of available job types."
            )))
        }
    }

    /// `POST /workspaces/`: checks, the directory with its files and symlinks (owned by the
    /// caller's account), then the row as `idle`; nothing is left behind on failure.
    pub async fn create_workspace(&self, user: &User, body: Body) -> Result<Reply> {
        let body = object(body)?;
        let (Some(Value::String(name)), Some(Value::String(description))) =
            (body.get("name"), body.get("description"))
        else {
            return Err(Error::bad("Missing required fields."));
        };
        let default_job_type = match body.get("default_job_type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                self.check_job_type(s)?;
                Some(s.clone())
            }
            Some(other) => {
                return Err(Error::bad(format!(
                    "{other} is not in the list of available job types."
                )));
            }
        };
        if !matches!(
            body.get("workspace_details"),
            None | Some(Value::Null | Value::Object(_))
        ) {
            return Err(Error::bad("Workspace details not JSON."));
        }
        let account = self.account_of(user).await?;
        let requested = self.requested(body.get("workspace_details")).await?;
        self.check_disk_space(user.id, written(&requested.entries))?;
        // The directory is new: what it holds is what the request asked for, so the scan
        // the original queued here is not needed.
        let mut current = CurrentDetails::default();
        let mut disk_space = 0;
        for entry in &requested.entries {
            match entry {
                Entry::File { name, content } => {
                    disk_space += i64::try_from(content.len()).unwrap_or(i64::MAX);
                    if !name.parts().any(|p| p.starts_with('.')) {
                        current.files.push(Named {
                            name: format!("/{name}"),
                        });
                    }
                }
                Entry::Symlink { name, .. } => {
                    if !name.parts().any(|p| p.starts_with('.')) {
                        current.symlinks.push(Named {
                            name: format!("/{name}"),
                        });
                    }
                }
            }
        }
        current.files.sort();
        current.files.dedup();
        current.symlinks.sort();
        current.symlinks.dedup();
        let id = self.records.apply(|t| t.workspace_id());
        let workspace = Workspace {
            id,
            user_id: Some(user.id),
            name: name.clone(),
            description: description.clone(),
            file_path: format!("{}/{id}", account.name),
            disk_space,
            datetime_created: self.now(),
            datetime_last_modified: None,
            datetime_last_job_launch: None,
            default_job_type,
            status: WorkspaceStatus::Idle,
            workspace_details: WorkspaceDetails {
                request_workspace_details: requested.request,
                current_workspace_details: current,
            },
        };
        self.storage
            .create(&workspace.file_path, &account, requested.entries)
            .await
            .map_err(|e| self.entry_error(e))?;
        if let Err(e) = self.records.workspaces.insert(&workspace).await {
            if let Err(cleanup) = self.storage.delete(&workspace.file_path, &account).await {
                tracing::error!(error = %cleanup, path = %workspace.file_path, "removing the directory of a workspace that could not be stored failed");
            }
            return Err(e.into());
        }
        self.records
            .apply(|t| t.workspaces.insert(id, workspace.clone()));
        Ok(Reply::new(
            "Successful.",
            json!({ "workspace": workspace.wire_naive() }),
        ))
    }

    fn entry_error(&self, e: storage::Error) -> Error {
        match e {
            storage::Error::Refused(path) => {
                Error::bad(format!("Invalid file path specified {path}"))
            }
            other => other.into(),
        }
    }

    /// The checks PUT, start and upload share (§A10.6): storage mapping, 404, unaccepted.
    pub async fn writable(&self, user: &User, id: i64) -> Result<(Workspace, Account)> {
        let account = self.account_of(user).await?;
        let workspace = self.owned(user, id).ok_or_else(|| not_found_for_user(id))?;
        if self.is_frozen(id) {
            return Err(frozen(id));
        }
        Ok((workspace, account))
    }

    /// `PUT /workspaces/<id>/`.
    pub async fn update_workspace(&self, user: &User, id: i64, body: Body) -> Result<Reply> {
        let (workspace, account) = self.writable(user, id).await?;
        let body = object(body)?;
        let text = |key: &str, current: &str| -> Result<String> {
            match body.get(key) {
                None => Ok(current.to_owned()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(Error::bad(format!("Invalid JSON: {key} must be a string."))),
            }
        };
        let name = text("name", &workspace.name)?;
        let description = text("description", &workspace.description)?;
        let default_job_type = match body.get("default_job_type") {
            None => workspace.default_job_type.clone(),
            Some(Value::Null) => None,
            Some(Value::String(s)) => {
                self.check_job_type(s)?;
                Some(s.clone())
            }
            Some(other) => {
                return Err(Error::bad(format!(
                    "{other} is not in the list of available job types."
                )));
            }
        };
        let requested = self.requested(body.get("workspace_details")).await?;
        if !requested.entries.is_empty() {
            self.storage
                .write(&workspace.file_path, &account, requested.entries.clone())
                .await
                .map_err(|e| self.entry_error(e))?;
        }
        let _write = self.records.lock().await;
        let Some(mut current) = self.owned(user, id) else {
            return Err(not_found_for_user(id));
        };
        current.name = name;
        current.description = description;
        current.default_job_type = default_job_type;
        let details = &mut current.workspace_details.current_workspace_details;
        for entry in &requested.entries {
            let (list, name) = match entry {
                Entry::File { name, .. } => (&mut details.files, name),
                Entry::Symlink { name, .. } => (&mut details.symlinks, name),
            };
            let named = Named {
                name: format!("/{name}"),
            };
            if !list.contains(&named) {
                list.push(named);
            }
        }
        details.files.sort();
        details.symlinks.sort();
        self.records.workspaces.update(&current).await?;
        self.records.apply(|t| t.workspaces.insert(id, current));
        self.queue.push(Task::Scan(id));
        Ok(Reply::bare("Update successful."))
    }

    /// `PUT /workspaces/<id>/upload/`: every uploaded file, by its base name, into the
    /// workspace root (replacing files of the same name).
    pub async fn upload(
        &self,
        user: &User,
        id: i64,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<Reply> {
        let (workspace, account) = self.writable(user, id).await?;
        if files.is_empty() {
            return Err(Error::bad("No files found in request."));
        }
        let mut entries = Vec::with_capacity(files.len());
        for (filename, content) in files {
            let base = filename.rsplit(['/', '\\']).next().unwrap_or_default();
            let name = EntryName::parse(base)
                .map_err(|_| Error::bad(format!("Invalid file path specified {filename}")))?;
            entries.push(Entry::File { name, content });
        }
        self.check_disk_space(user.id, written(&entries))?;
        self.storage
            .write(&workspace.file_path, &account, entries)
            .await
            .map_err(|e| self.entry_error(e))?;
        self.queue.push(Task::Scan(id));
        Ok(Reply::bare("Successful upload."))
    }

    fn jobs_running(&self, id: i64) -> bool {
        self.records
            .read()
            .jobs
            .values()
            .any(|j| j.workspace_id == Some(id) && j.status.blocks_deletion())
    }

    async fn mark(&self, id: i64, status: WorkspaceStatus) -> Result<()> {
        let _write = self.records.lock().await;
        let Some(mut ws) = self.records.read().workspaces.get(&id).cloned() else {
            return Ok(());
        };
        ws.status = status;
        self.records.workspaces.update(&ws).await?;
        self.records.apply(|t| t.workspaces.insert(id, ws));
        Ok(())
    }

    /// `DELETE /workspaces/<id>/`: queued to the worker.
    pub async fn delete_workspace(&self, user: &User, id: i64) -> Result<Reply> {
        let workspace = self.owned(user, id).ok_or_else(|| not_found_for_user(id))?;
        if self.is_frozen(id) {
            return Err(frozen(id));
        }
        let pending_out = self
            .records
            .read()
            .shares
            .values()
            .any(|s| s.original_workspace_id == Some(id) && !s.is_accepted);
        if pending_out {
            return Err(Error::bad(
                "Cannot delete workspace, it has shares that have not been accepted.",
            ));
        }
        if self.jobs_running(id) {
            return Err(Error::bad(JOBS_RUNNING));
        }
        self.account_of(user).await?;
        self.queue_delete(&workspace).await?;
        Ok(Reply::bare(format!("Workspace {id} queued for deletion.")))
    }

    async fn queue_delete(&self, workspace: &Workspace) -> Result<()> {
        let copying = workspace.status == WorkspaceStatus::Initializing;
        if !copying && !self.storage.is_valid(&workspace.file_path).await {
            tracing::error!(
                id = workspace.id,
                "deletion refused: invalid workspace path"
            );
            self.mark(workspace.id, WorkspaceStatus::Error).await?;
            return Err(Error::refused(Kind::Failed, BAD_PATH_DELETE));
        }
        self.mark(workspace.id, WorkspaceStatus::Deleting).await?;
        self.queue.push(Task::Delete(workspace.id));
        Ok(())
    }

    // ---- sharing ---------------------------------------------------------------------------

    fn share_item(&self, share: &Share) -> Value {
        let tables = self.records.read();
        let nested = |id: Option<i64>| {
            id.and_then(|id| tables.workspaces.get(&id)).map(|w| {
                let owner = w.user_id.and_then(|u| tables.users.get(&u));
                w.nested(owner)
            })
        };
        json!({
            "original_workspace_id": nested(share.original_workspace_id),
            "shared_workspace_id": nested(Some(share.shared_workspace_id)),
            "last_resource_options": share.last_resource_options,
            "last_job_type": share.last_job_type,
            "is_accepted": share.is_accepted,
            "datetime_share_created": iso_z(&share.datetime_share_created),
        })
    }

    /// `GET /shared_workspaces/[<id>/]?is_accepted=`: shares the caller sent and received.
    pub fn list_shares(
        &self,
        user: &User,
        id: Option<i64>,
        is_accepted: Option<&str>,
    ) -> Result<Reply> {
        let accepted = match is_accepted.map(str::to_ascii_lowercase).as_deref() {
            None => None,
            Some("true" | "1") => Some(true),
            Some("false" | "0") => Some(false),
            Some(_) => return Err(Error::bad("is_accepted must be true or false.")),
        };
        let (sent, received): (Vec<Share>, Vec<Share>) = {
            let tables = self.records.read();
            let owner_of = |ws: Option<i64>| {
                ws.and_then(|w| tables.workspaces.get(&w))
                    .and_then(|w| w.user_id)
            };
            let pick = |s: &&Share| {
                id.is_none_or(|id| s.shared_workspace_id == id)
                    && accepted.is_none_or(|a| s.is_accepted == a)
            };
            (
                tables
                    .shares
                    .values()
                    .filter(|s| owner_of(s.original_workspace_id) == Some(user.id))
                    .filter(pick)
                    .cloned()
                    .collect(),
                tables
                    .shares
                    .values()
                    .filter(|s| owner_of(Some(s.shared_workspace_id)) == Some(user.id))
                    .filter(pick)
                    .cloned()
                    .collect(),
            )
        };
        let message = if sent.is_empty() && received.is_empty() {
            "Shared workspace matching given parameters could not be found."
        } else {
            "Successful."
        };
        Ok(Reply::new(
            message,
            json!({
                "original_workspaces": sent.iter().map(|s| self.share_item(s)).collect::<Vec<_>>(),
                "shared_workspaces": received.iter().map(|s| self.share_item(s)).collect::<Vec<_>>(),
            }),
        ))
    }

    /// `POST /shared_workspaces/`: a frozen copy per recipient, copied by the worker.
    pub async fn share(&self, user: &User, body: Body) -> Result<Reply> {
        let body = object(body)?;
        let (Some(original), Some(ids)) = (
            body.get("original_workspace_id"),
            body.get("shared_user_ids"),
        ) else {
            return Err(Error::bad("Missing required fields."));
        };
        let original_id = original.as_i64();
        let original = original_id
            .and_then(|id| self.owned(user, id))
            .filter(|_| !original_id.is_some_and(|id| self.is_frozen(id)))
            .ok_or_else(|| {
                Error::refused(
                    Kind::NotFound,
                    format!("Workspace {original} not found for user."),
                )
            })?;
        let Value::Array(ids) = ids else {
            return Err(Error::bad("shared_user_ids is not a list."));
        };
        let recipients: Vec<User> = {
            let tables = self.records.read();
            let mut seen = HashSet::new();
            ids.iter()
                .map(|id| {
                    id.as_i64()
                        .filter(|id| seen.insert(*id) && *id != user.id)
                        .and_then(|id| tables.users.get(&id).cloned())
                })
                .collect::<Option<Vec<User>>>()
                .ok_or_else(|| Error::bad("Invalid user id provided."))?
        };
        let mut accounts = Vec::with_capacity(recipients.len());
        for recipient in &recipients {
            match self.storage.account(&recipient.username).await {
                Ok(account) => accounts.push(account),
                Err(storage::Error::NoAccount(_)) => {
                    return Err(Error::bad(format!(
                        "User {} {} does not have permission on the file system.",
                        recipient.first_name, recipient.last_name
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let latest_job = self
            .records
            .read()
            .jobs
            .values()
            .filter(|j| j.workspace_id == Some(original.id))
            .max_by_key(|j| j.datetime_created)
            .cloned();
        let mut created = Vec::with_capacity(recipients.len());
        let _write = self.records.lock().await;
        for (recipient, account) in recipients.iter().zip(&accounts) {
            let id = self.records.apply(|t| t.workspace_id());
            let now = self.now();
            let copy = Workspace {
                id,
                user_id: Some(recipient.id),
                file_path: format!("{}/{id}", account.name),
                disk_space: 0,
                datetime_created: now,
                datetime_last_modified: None,
                datetime_last_job_launch: None,
                status: WorkspaceStatus::Initializing,
                ..original.clone()
            };
            let share = Share {
                shared_workspace_id: id,
                original_workspace_id: Some(original.id),
                last_resource_options: latest_job
                    .as_ref()
                    .map_or_else(|| json!({}), |j| j.resource_options.clone()),
                last_job_type: latest_job.as_ref().map(|j| j.job_type.clone()),
                is_accepted: false,
                datetime_share_created: now,
            };
            self.records.workspaces.insert(&copy).await?;
            if let Err(e) = self.records.shares.insert(&share).await {
                let _ = self.records.workspaces.delete(&id.to_string()).await;
                return Err(e.into());
            }
            self.records.apply(|t| {
                t.workspaces.insert(id, copy);
                t.shares.insert(id, share.clone());
            });
            created.push(share);
        }
        drop(_write);
        for share in &created {
            self.queue.push(Task::Copy(share.shared_workspace_id));
        }
        Ok(Reply::new(
            "Successful.",
            json!({ "shared_workspaces": created.iter().map(|s| self.share_item(s)).collect::<Vec<_>>() }),
        ))
    }

    /// `PUT /shared_workspaces/<id>/accept/`: the recipient accepts.
    pub async fn accept_share(&self, user: &User, id: i64) -> Result<Reply> {
        let _write = self.records.lock().await;
        let found = {
            let tables = self.records.read();
            tables.shares.get(&id).cloned().zip(
                tables
                    .workspaces
                    .get(&id)
                    .filter(|w| w.user_id == Some(user.id))
                    .cloned(),
            )
        };
        let Some((mut share, mut copy)) = found else {
            return Err(Error::refused(
                Kind::NotFound,
                format!("Shared workspace {id} not found."),
            ));
        };
        share.is_accepted = true;
        copy.datetime_created = self.now();
        self.records.shares.update(&share).await?;
        self.records.workspaces.update(&copy).await?;
        self.records.apply(|t| {
            t.shares.insert(id, share);
            t.workspaces.insert(id, copy);
        });
        Ok(Reply::bare("Successful."))
    }

    /// `DELETE /shared_workspaces/<id>/`: either party withdraws an unaccepted share.
    pub async fn delete_share(&self, user: &User, id: i64) -> Result<Reply> {
        let found = {
            let tables = self.records.read();
            tables.shares.get(&id).cloned().and_then(|s| {
                let copy = tables.workspaces.get(&id).cloned()?;
                let original_owner = s
                    .original_workspace_id
                    .and_then(|o| tables.workspaces.get(&o))
                    .and_then(|w| w.user_id);
                Some((s, copy, original_owner))
            })
        };
        let Some((share, copy, original_owner)) = found else {
            return Err(Error::refused(
                Kind::NotFound,
                format!("Shared workspace {id} not found."),
            ));
        };
        if copy.user_id != Some(user.id) && original_owner != Some(user.id) {
            return Err(Error::refused(
                Kind::Forbidden,
                format!("User does not have permissions for shared workspace {id}."),
            ));
        }
        if share.is_accepted {
            return Err(Error::bad(format!(
                "Shared workspace {id} has been accepted and cannot be deleted."
            )));
        }
        if self.jobs_running(id) {
            return Err(Error::bad(JOBS_RUNNING));
        }
        self.account_of(user).await?;
        self.queue_delete(&copy).await?;
        Ok(Reply::bare("Successful."))
    }

    // ---- users, job types, parameters --------------------------------------------------------

    /// `GET /users/?search=`: other users (not `admin`), searched case-insensitively in
    /// "first last" and the e-mail address.
    pub fn users(&self, user: &User, search: Option<&str>) -> Reply {
        let needle = search.map(str::to_lowercase).unwrap_or_default();
        let listed: Vec<Value> = self
            .records
            .read()
            .users
            .values()
            .filter(|u| u.id != user.id && u.username != "admin")
            .filter(|u| {
                needle.is_empty()
                    || format!("{} {}", u.first_name, u.last_name)
                        .to_lowercase()
                        .contains(&needle)
                    || u.email.to_lowercase().contains(&needle)
            })
            .map(User::listed)
            .collect();
        let message = if listed.is_empty() {
            "Users matching given parameters could not be found."
        } else {
            "Successful."
        };
        Reply::new(message, json!({ "users": listed }))
    }

    /// `GET /job_types/`.
    pub fn job_types(&self) -> Reply {
        let types: Map<String, Value> = self
            .settings
            .job_types
            .iter()
            .map(|(k, name)| (k.clone(), json!({"id": k, "name": name})))
            .collect();
        Reply::new("Successful.", json!({ "job_types": types }))
    }

    /// `GET /parameters/`.
    pub fn parameters(&self) -> Reply {
        Reply::new(
            "Successful.",
            json!({ "parameters": self.settings.parameters }),
        )
    }

    // ---- background work -------------------------------------------------------------------

    /// Work a restart would otherwise lose: deletions and copies in flight.
    pub fn pending_tasks(&self) -> Vec<Task> {
        let tables = self.records.read();
        tables
            .workspaces
            .values()
            .filter_map(|w| match w.status {
                WorkspaceStatus::Deleting => Some(Task::Delete(w.id)),
                WorkspaceStatus::Initializing if tables.shares.contains_key(&w.id) => {
                    Some(Task::Copy(w.id))
                }
                _ => None,
            })
            .collect()
    }

    /// Runs the worker until every sender is gone or `stop` resolves.
    pub async fn run_worker(
        &self,
        mut rx: worker::Receiver,
        stop: impl std::future::Future<Output = ()>,
    ) {
        for task in self.pending_tasks() {
            self.queue.push(task);
        }
        tokio::pin!(stop);
        loop {
            let task = tokio::select! {
                () = &mut stop => return,
                task = rx.next() => match task { Some(t) => t, None => return },
            };
            if let Err(e) = self.run_task(task).await {
                tracing::error!(?task, error = %error_chain(&e), "background task failed");
            }
        }
    }

    /// Runs one task now.
    pub async fn run_task(&self, task: Task) -> Result<()> {
        match task {
            Task::Scan(id) => self.scan(id).await,
            Task::Delete(id) => self.remove(id).await,
            Task::Copy(id) => self.copy(id).await,
        }
    }

    async fn scan(&self, id: i64) -> Result<()> {
        let Some(ws) = self.records.read().workspaces.get(&id).cloned() else {
            return Ok(());
        };
        if matches!(
            ws.status,
            WorkspaceStatus::Initializing | WorkspaceStatus::Deleting
        ) {
            return Ok(());
        }
        let scan = self.storage.scan(&ws.file_path).await?;
        // Only the scan's fields change, on the row as it is now.
        let _write = self.records.lock().await;
        let Some(mut current) = self.records.read().workspaces.get(&id).cloned() else {
            return Ok(());
        };
        current.disk_space = scan.disk_space;
        current.workspace_details.current_workspace_details = scan.details;
        current.datetime_last_modified = Some(self.now());
        self.records.workspaces.update(&current).await?;
        self.records.apply(|t| t.workspaces.insert(id, current));
        Ok(())
    }

    async fn remove(&self, id: i64) -> Result<()> {
        let Some(ws) = self.records.read().workspaces.get(&id).cloned() else {
            return Ok(());
        };
        if ws.status != WorkspaceStatus::Deleting {
            return Ok(());
        }
        let owner = ws
            .user_id
            .and_then(|u| self.records.read().users.get(&u).cloned());
        let removed = match owner {
            Some(owner) => match self.storage.account(&owner.username).await {
                Ok(account) => self.storage.delete(&ws.file_path, &account).await,
                Err(e) => Err(e),
            },
            None => Err(storage::Error::NoAccount(format!(
                "owner of workspace {id}"
            ))),
        };
        if let Err(e) = removed {
            self.mark(id, WorkspaceStatus::Error).await?;
            return Err(e.into());
        }
        let _write = self.records.lock().await;
        let (shares, jobs): (Vec<Share>, Vec<_>) = {
            let tables = self.records.read();
            (
                tables
                    .shares
                    .values()
                    .filter(|s| s.original_workspace_id == Some(id))
                    .cloned()
                    .collect(),
                tables
                    .jobs
                    .values()
                    .filter(|j| j.workspace_id == Some(id))
                    .cloned()
                    .collect(),
            )
        };
        for mut share in shares {
            share.original_workspace_id = None;
            self.records.shares.update(&share).await?;
            self.records
                .apply(|t| t.shares.insert(share.shared_workspace_id, share));
        }
        for mut job in jobs {
            job.workspace_id = None;
            self.records.jobs.update(&job).await?;
            self.records.apply(|t| t.jobs.insert(job.id, job));
        }
        if self.records.read().shares.contains_key(&id) {
            self.records.shares.delete(&id.to_string()).await?;
            self.records.apply(|t| t.shares.remove(&id));
        }
        self.records.workspaces.delete(&id.to_string()).await?;
        self.records.apply(|t| t.workspaces.remove(&id));
        Ok(())
    }

    async fn copy(&self, id: i64) -> Result<()> {
        let found = {
            let tables = self.records.read();
            let copy = tables.workspaces.get(&id).cloned();
            let original = tables
                .shares
                .get(&id)
                .and_then(|s| s.original_workspace_id)
                .and_then(|o| tables.workspaces.get(&o).cloned());
            let owner = copy
                .as_ref()
                .and_then(|c| c.user_id)
                .and_then(|u| tables.users.get(&u).cloned());
            copy.zip(original).zip(owner)
        };
        let Some(((copy, original), owner)) = found else {
            self.mark_if(id, WorkspaceStatus::Initializing, WorkspaceStatus::Error)
                .await?;
            return Ok(());
        };
        if copy.status != WorkspaceStatus::Initializing {
            return Ok(());
        }
        let copied = match self.storage.account(&owner.username).await {
            Ok(account) => {
                self.storage
                    .copy(&original.file_path, &copy.file_path, &account)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = copied {
            self.mark_if(id, WorkspaceStatus::Initializing, WorkspaceStatus::Error)
                .await?;
            return Err(e.into());
        }
        self.mark_if(id, WorkspaceStatus::Initializing, WorkspaceStatus::Idle)
            .await?;
        self.scan(id).await
    }

    async fn mark_if(&self, id: i64, from: WorkspaceStatus, to: WorkspaceStatus) -> Result<()> {
        let _write = self.records.lock().await;
        let Some(mut ws) = self.records.read().workspaces.get(&id).cloned() else {
            return Ok(());
        };
        if ws.status != from {
            return Ok(());
        }
        ws.status = to;
        self.records.workspaces.update(&ws).await?;
        self.records.apply(|t| t.workspaces.insert(id, ws));
        Ok(())
    }

    /// The ids of workspaces (for tests and the job part).
    pub fn workspace(&self, id: i64) -> Option<Workspace> {
        self.records.read().workspaces.get(&id).cloned()
    }

    /// Names of users with tokens (for diagnostics).
    pub fn token_holders(&self) -> BTreeSet<i64> {
        self.records
            .read()
            .tokens
            .values()
            .map(|t| t.user_id)
            .collect()
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MockStorage;
    use tessera_embedded::{EmbeddedConfig, EmbeddedStore};

    async fn uws(storage: MockStorage, dir: &std::path::Path) -> Uws {
        let store = EmbeddedStore::from_config(&EmbeddedConfig {
            embedded_db_path: dir.join("t.sqlite"),
        })
        .await
        .unwrap();
        let records = Records::open(&store).await.unwrap();
        let settings = Settings {
            login: LoginMode::Local,
            token_lifetime: Duration::seconds(60),
            job_types: BTreeMap::new(),
            parameters: json!([]),
            quota: crate::quota::Quota::default(),
        };
        Uws::new(
            records,
            Arc::new(storage),
            None,
            settings,
            Arc::new(Utc::now),
        )
        .0
    }

    fn alice() -> Account {
        Account {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
        }
    }

    async fn user(uws: &Uws) -> User {
        let client = uws.create_api_client("portal", "").await.unwrap();
        let token = uws
            .login(Ok(
                json!({"client_token": client, "user_info": {"username": "alice", "email": "a@x"}}),
            ))
            .await
            .unwrap();
        uws.authenticate(Some(&format!("Token {token}")))
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn a_storage_failure_leaves_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = MockStorage::new();
        storage.expect_account().returning(|_| Ok(alice()));
        storage.expect_create().times(1).returning(|path, _, _| {
            Err(storage::Error::Io {
                what: format!("creating {path}"),
                source: std::io::Error::other("disk full"),
            })
        });
        let uws = uws(storage, dir.path()).await;
        let alice = user(&uws).await;
        let err = uws
            .create_workspace(&alice, Ok(json!({"name": "w", "description": "d"})))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Storage(_)), "{err:?}");
        assert!(uws.records().read().workspaces.is_empty());
    }

    #[tokio::test]
    async fn checks_come_before_any_storage_call() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = MockStorage::new();
        storage.expect_account().returning(|_| Ok(alice()));
        storage.expect_create().never();
        storage.expect_check_source().never();
        let uws = uws(storage, dir.path()).await;
        let alice = user(&uws).await;
        let refused = |body: Value| {
            let uws = &uws;
            let alice = alice.clone();
            async move {
                match uws.create_workspace(&alice, Ok(body)).await {
                    Err(Error::Refused { kind, message }) => (kind, message),
                    other => panic!("{other:?}"),
                }
            }
        };
        assert_eq!(
            refused(json!({"name": "w", "description": "d", "default_job_type": "x"})).await,
            (
                Kind::BadRequest,
                "x is not in the list of available job types.".into()
            )
        );
        // Names are checked before a source is looked at; symlinks before files.
        assert_eq!(
            refused(json!({"name": "w", "description": "d", "workspace_details": {"files": [{"name": "/f"}], "symlinks": [{"name": "a/../b", "source_path": "/etc"}]}})).await,
            (Kind::BadRequest, "Symlink name cannot contain double dots.".into())
        );
    }

    #[tokio::test]
    async fn an_unknown_storage_account_is_the_originals_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = MockStorage::new();
        storage
            .expect_account()
            .returning(|name| Err(storage::Error::NoAccount(name.into())));
        let uws = uws(storage, dir.path()).await;
        let alice = user(&uws).await;
        match uws.update_workspace(&alice, 1, Ok(json!({}))).await {
            Err(Error::Refused { kind, message }) => {
                assert_eq!(kind, Kind::BadRequest);
                assert_eq!(message, NO_ACCOUNT);
            }
            other => panic!("{other:?}"),
        }
    }
}

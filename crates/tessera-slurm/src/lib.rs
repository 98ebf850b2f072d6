//! A Slurm client over the Slurm commands: `sbatch` to submit a batch script as a mapped
//! account, `scontrol show job` to read a job's state, `scancel` to cancel it.
//!
//! The commands rather than `slurmrestd`: they are present wherever Slurm is, need no token
//! per user (as root, `sbatch --uid` submits for any account), and behave the same from
//! Slurm 20 to 24, while the REST API's versions come and go. Every command runs with a
//! timeout; `SLURM_CONF` comes from [`Settings::conf`] when set.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera_slurm::Error> {
//! use tessera_slurm::{BatchJob, Slurm, Settings};
//! let slurm = Slurm::new(Settings::default());
//! let id = slurm
//!     .submit(&BatchJob::new("#!/bin/bash\necho hello\n", "/srv/work").user("alice"))
//!     .await?;
//! let state = slurm.job(id).await?.map(|job| job.state);
//! # Ok(()) }
//! ```

mod record;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

pub use record::{JobId, JobRecord, JobState};

/// Where the Slurm commands are and how long each may take.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `SLURM_CONF` for the commands; `None` keeps the process's own (or Slurm's default).
    pub conf: Option<PathBuf>,
    /// A directory holding `sbatch`, `scontrol` and `scancel`; `None` searches `PATH`.
    pub bin_dir: Option<PathBuf>,
    /// The longest one command may take before it is killed and reported unavailable.
    pub command_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            conf: None,
            bin_dir: None,
            command_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Slurm refused the request (a bad partition, a time limit above the partition's, …),
    /// with its own message.
    #[error("slurm refused the job: {0}")]
    Rejected(String),
    #[error("no slurm job {0}")]
    NotFound(JobId),
    /// The commands are missing, the controller does not answer, or a command timed out.
    #[error("slurm is unavailable: {0}")]
    Unavailable(String),
    /// This process may not submit as the requested account (only root may).
    #[error("cannot submit as {user}: {reason}")]
    NotPermitted { user: String, reason: String },
    #[error("invalid batch job: {0}")]
    Invalid(String),
    /// A command's output this client cannot read.
    #[error("unexpected output from {command}: {detail}")]
    Protocol {
        command: &'static str,
        detail: String,
    },
}

/// A job array's indexes `first..=last`, at most `max_parallel` running at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArraySpec {
    pub first: u32,
    pub last: u32,
    pub max_parallel: Option<u32>,
}

/// A batch script and how to run it.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// The script, starting with `#!`.
    pub script: String,
    /// Its working directory (must exist and be usable by `user`).
    pub workdir: PathBuf,
    pub name: Option<String>,
    /// The account it runs as; `None` for this process's own.
    pub user: Option<String>,
    /// Standard output and error files (Slurm's `%j`, `%A`, `%a` patterns allowed);
    /// Slurm's default (`slurm-%j.out` in `workdir`) when `None`.
    pub output: Option<String>,
    pub error: Option<String>,
    pub time_limit: Option<Duration>,
    pub partition: Option<String>,
    pub cpus: Option<u32>,
    pub array: Option<ArraySpec>,
    /// The job's whole environment besides Slurm's own variables: nothing of this process's
    /// environment reaches the job.
    pub env: BTreeMap<String, String>,
}

impl BatchJob {
    pub fn new(script: impl Into<String>, workdir: impl Into<PathBuf>) -> Self {
        Self {
            script: script.into(),
            workdir: workdir.into(),
            name: None,
            user: None,
            output: None,
            error: None,
            time_limit: None,
            partition: None,
            cpus: None,
            array: None,
            env: BTreeMap::new(),
        }
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn output(mut self, output: impl Into<String>) -> Self {
        self.output = Some(output.into());
        self
    }

    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }

    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = Some(cpus);
        self
    }

    pub fn array(mut self, array: ArraySpec) -> Self {
        self.array = Some(array);
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The script with `env` exported after its `#!` line: `sbatch --export` cannot carry
    /// values with commas, and the script is the one place Slurm passes through untouched.
    fn rendered_script(&self) -> Result<String, Error> {
        let (shebang, body) = match self.script.split_once('\n') {
            Some((shebang, body)) if shebang.starts_with("#!") => (shebang, body),
            _ => {
                return Err(Error::Invalid(
                    "the script must start with a #! line".into(),
                ));
            }
        };
        let mut script = format!("{shebang}\n");
        for (key, value) in &self.env {
            let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::Invalid(format!(
                    "{key:?} is not an environment variable name"
                )));
            }
            script.push_str(&format!(
                "export {key}='{}'\n",
                value.replace('\'', r"'\''")
            ));
        }
        script.push_str(body);
        Ok(script)
    }

    fn arguments(&self, gid: Option<u32>) -> Result<Vec<String>, Error> {
        let mut args = vec!["--parsable".to_owned(), "--export=NONE".to_owned()];
        let workdir = self
            .workdir
            .to_str()
            .ok_or_else(|| Error::Invalid("the working directory is not UTF-8".into()))?;
        args.push(format!("--chdir={workdir}"));
        if let Some(name) = &self.name {
            args.push(format!("--job-name={name}"));
        }
        if let (Some(user), Some(gid)) = (&self.user, gid) {
            args.push(format!("--uid={user}"));
            args.push(format!("--gid={gid}"));
        }
        if let Some(output) = &self.output {
            args.push(format!("--output={output}"));
        }
        if let Some(error) = &self.error {
            args.push(format!("--error={error}"));
        }
        if let Some(limit) = self.time_limit {
            // hours:minutes:seconds, rounded up to a whole second (at least one).
            let seconds = limit.as_secs() + u64::from(limit.subsec_nanos() > 0);
            let seconds = seconds.max(1);
            args.push(format!(
                "--time={}:{:02}:{:02}",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60
            ));
        }
        if let Some(partition) = &self.partition {
            args.push(format!("--partition={partition}"));
        }
        if let Some(cpus) = self.cpus {
            if cpus == 0 {
                return Err(Error::Invalid("cpus must be at least 1".into()));
            }
            args.push(format!("--cpus-per-task={cpus}"));
        }
        if let Some(array) = self.array {
            if array.last < array.first {
                return Err(Error::Invalid(format!(
                    "array {}-{} is empty",
                    array.first, array.last
                )));
            }
            let mut spec = format!("--array={}-{}", array.first, array.last);
            if let Some(max) = array.max_parallel {
                spec.push_str(&format!("%{}", max.max(1)));
            }
            args.push(spec);
        }
        Ok(args)
    }
}

/// The client.
#[derive(Debug, Clone)]
pub struct Slurm {
    settings: Settings,
}

impl Slurm {
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }

    /// Submits a batch job; returns its id (an array job's id for an array).
    pub async fn submit(&self, job: &BatchJob) -> Result<JobId, Error> {
        let gid = match &job.user {
            Some(user) => self.account_gid(user).await?,
            None => None,
        };
        let args = job.arguments(gid)?;
        let script = job.rendered_script()?;
        let out = self.run("sbatch", &args, Some(script.as_bytes())).await?;
        // `--parsable`: `id` or `id;cluster`.
        let line = out.trim();
        let id = line.split(';').next().unwrap_or("");
        let id = id.parse().map_err(|_| Error::Protocol {
            command: "sbatch",
            detail: format!("no job id in {line:?}"),
        })?;
        tracing::debug!(job = id, user = job.user.as_deref(), "slurm job submitted");
        Ok(id)
    }

    /// A job's record, or `None` when Slurm does not know it (never did, or forgot it
    /// `MinJobAge` after it ended). For an array job's id this is its first task.
    pub async fn job(&self, id: JobId) -> Result<Option<JobRecord>, Error> {
        let mut tasks = self.tasks(id).await?;
        let exact = tasks.iter().position(|task| task.id == id);
        Ok(match exact {
            Some(index) => Some(tasks.swap_remove(index)),
            None => tasks.into_iter().next(),
        })
    }

    /// Every task of an array job (one record for a plain job); empty when Slurm does not
    /// know the id.
    pub async fn tasks(&self, id: JobId) -> Result<Vec<JobRecord>, Error> {
        let args = [
            "show".to_owned(),
            "job".to_owned(),
            "--oneliner".to_owned(),
            id.to_string(),
        ];
        let out = match self.run("scontrol", &args, None).await {
            Ok(out) => out,
            Err(Error::Rejected(message)) if message.contains("Invalid job id") => {
                return Ok(Vec::new());
            }
            Err(error) => return Err(error),
        };
        out.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                JobRecord::parse(line).map_err(|detail| Error::Protocol {
                    command: "scontrol",
                    detail,
                })
            })
            .collect()
    }

    /// Cancels a job (every task of an array). Cancelling a job that already ended is not an
    /// error; one Slurm does not know is [`Error::NotFound`] (`scancel` itself says nothing).
    pub async fn cancel(&self, id: JobId) -> Result<(), Error> {
        if self.tasks(id).await?.is_empty() {
            return Err(Error::NotFound(id));
        }
        match self.run("scancel", &[id.to_string()], None).await {
            Ok(_) => Ok(()),
            Err(Error::Rejected(message))
                if message.contains("already completing or completed") =>
            {
                Ok(())
            }
            Err(Error::Rejected(message)) if message.contains("Invalid job id") => {
                Err(Error::NotFound(id))
            }
            Err(error) => Err(error),
        }
    }

    /// Whether the controller answers.
    pub async fn ping(&self) -> Result<(), Error> {
        // A controller that does not answer makes `scontrol ping` exit 1 with "DOWN".
        let out = self
            .run("scontrol", &["ping".to_owned()], None)
            .await
            .map_err(|error| match error {
                Error::Rejected(message) => Error::Unavailable(message),
                error => error,
            })?;
        if out.contains("is UP") {
            Ok(())
        } else {
            Err(Error::Unavailable(out.trim().to_owned()))
        }
    }

    /// The primary group to submit `user`'s jobs with, when this process submits for others
    /// (root); `None` when `user` is this process's own account.
    async fn account_gid(&self, user: &str) -> Result<Option<u32>, Error> {
        let not_permitted = |reason: String| Error::NotPermitted {
            user: user.to_owned(),
            reason,
        };
        let uid = self
            .id(&["-u", user])
            .await
            .map_err(|reason| not_permitted(format!("no such account ({reason})")))?;
        let me = std::fs::metadata("/proc/self")
            .map(|meta| meta.uid())
            .map_err(|e| Error::Unavailable(format!("cannot read this process's uid: {e}")))?;
        if uid == me {
            return Ok(None);
        }
        if me != 0 {
            return Err(not_permitted(
                "only root submits jobs for other accounts".into(),
            ));
        }
        self.id(&["-g", user])
            .await
            .map(Some)
            .map_err(not_permitted)
    }

    async fn id(&self, args: &[&str]) -> Result<u32, String> {
        let out = Command::new("id")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        text.trim()
            .parse()
            .map_err(|_| format!("id printed {text:?}"))
    }

    /// Runs a Slurm command; its standard output, or its message as an error.
    async fn run(
        &self,
        program: &'static str,
        args: &[String],
        stdin: Option<&[u8]>,
    ) -> Result<String, Error> {
        let path = match &self.settings.bin_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        let mut command = Command::new(&path);
        command
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(conf) = &self.settings.conf {
            command.env("SLURM_CONF", conf);
        }
        let mut child = command
            .spawn()
            .map_err(|e| Error::Unavailable(format!("cannot run {}: {e}", path.display())))?;
        let finish = async {
            if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
                pipe.write_all(input).await?;
                pipe.shutdown().await?;
            }
            child.wait_with_output().await
        };
        let out = tokio::time::timeout(self.settings.command_timeout, finish)
            .await
            .map_err(|_| {
                Error::Unavailable(format!(
                    "{program} took longer than {:?}",
                    self.settings.command_timeout
                ))
            })?
            .map_err(|e| Error::Unavailable(format!("{program}: {e}")))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if message.is_empty() {
            message = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        if message.is_empty() {
            message = format!("{program} failed ({})", out.status);
        }
        let unavailable = [
            "Unable to contact",
            "Socket timed out",
            "Connection refused",
            "Communication connection failure",
        ];
        if unavailable.iter().any(|marker| message.contains(marker)) {
            Err(Error::Unavailable(message))
        } else {
            Err(Error::Rejected(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_exported_in_the_script_quoted() {
        let job = BatchJob::new("#!/bin/bash\necho \"$A\"\n", "/w").env("A", "it's, a value");
        assert_eq!(
            job.rendered_script().unwrap(),
            "#!/bin/bash\nexport A='it'\\''s, a value'\necho \"$A\"\n"
        );
    }

    #[test]
    fn a_script_without_shebang_or_a_bad_variable_is_invalid() {
        assert!(matches!(
            BatchJob::new("echo hi\n", "/w").rendered_script(),
            Err(Error::Invalid(_))
        ));
        let job = BatchJob::new("#!/bin/sh\n", "/w").env("A-B", "x");
        assert!(matches!(job.rendered_script(), Err(Error::Invalid(_))));
    }

    #[test]
    fn arguments_carry_every_setting() {
        let job = BatchJob::new("#!/bin/sh\n", "/w")
            .name("n")
            .user("alice")
            .output("o.%j")
            .time_limit(Duration::from_millis(90_500))
            .partition("debug")
            .cpus(2)
            .array(ArraySpec {
                first: 0,
                last: 3,
                max_parallel: Some(2),
            });
        assert_eq!(
            job.arguments(Some(100)).unwrap(),
            [
                "--parsable",
                "--export=NONE",
                "--chdir=/w",
                "--job-name=n",
                "--uid=alice",
                "--gid=100",
                "--output=o.%j",
                "--time=0:01:31",
                "--partition=debug",
                "--cpus-per-task=2",
                "--array=0-3%2",
            ]
        );
        // Without a gid (the account is this process's own) no --uid is passed.
        assert_eq!(
            job.arguments(None)
                .unwrap()
                .iter()
                .filter(|a| a.starts_with("--uid"))
                .count(),
            0
        );
    }

    #[test]
    fn zero_cpus_and_empty_arrays_are_invalid() {
        assert!(
            BatchJob::new("#!/bin/sh\n", "/w")
                .cpus(0)
                .arguments(None)
                .is_err()
        );
        let empty = ArraySpec {
            first: 3,
            last: 1,
            max_parallel: None,
        };
        assert!(
            BatchJob::new("#!/bin/sh\n", "/w")
                .array(empty)
                .arguments(None)
                .is_err()
        );
    }

    #[tokio::test]
    async fn missing_commands_are_unavailable() {
        let slurm = Slurm::new(Settings {
            bin_dir: Some("/nonexistent".into()),
            ..Settings::default()
        });
        assert!(matches!(slurm.ping().await, Err(Error::Unavailable(_))));
        assert!(matches!(slurm.job(1).await, Err(Error::Unavailable(_))));
    }
}

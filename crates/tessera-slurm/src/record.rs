//! What Slurm says about a job: one line of `scontrol show job --oneliner`, parsed.

use std::collections::HashMap;
use std::time::Duration;

/// A job's id, or an array job's id.
pub type JobId = u64;

/// Slurm's job states (`JobState=` of `scontrol`, `job_state` of the REST API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Suspended,
    Completing,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    NodeFail,
    Preempted,
    BootFail,
    Deadline,
    OutOfMemory,
    /// A state this client does not know, as Slurm spelt it.
    Other(String),
}

impl JobState {
    /// Parses Slurm's spelling; `CANCELLED by 0` style suffixes are not part of `JobState`.
    pub fn parse(state: &str) -> Self {
        match state {
            "PENDING" => Self::Pending,
            "CONFIGURING" => Self::Configuring,
            "RUNNING" => Self::Running,
            "SUSPENDED" => Self::Suspended,
            "COMPLETING" => Self::Completing,
            "COMPLETED" => Self::Completed,
            "FAILED" => Self::Failed,
            "CANCELLED" => Self::Cancelled,
            "TIMEOUT" => Self::Timeout,
            "NODE_FAIL" => Self::NodeFail,
            "PREEMPTED" => Self::Preempted,
            "BOOT_FAIL" => Self::BootFail,
            "DEADLINE" => Self::Deadline,
            "OUT_OF_MEMORY" => Self::OutOfMemory,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the job will not run again (its processes are gone or going).
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            Self::Pending | Self::Configuring | Self::Running | Self::Suspended | Self::Other(_)
        )
    }

    /// Whether the job ended by itself with exit code 0.
    pub fn is_success(&self) -> bool {
        *self == Self::Completed
    }
}

/// One job (or one task of an array job) as Slurm reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: JobId,
    pub name: String,
    pub state: JobState,
    /// Why the job is pending or how it ended (`Reason=`), e.g. `Resources`, `NonZeroExitCode`.
    pub reason: String,
    /// The account it runs as.
    pub user: String,
    pub partition: String,
    /// The exit code of the batch script, and the signal that ended it (0 for none).
    pub exit_code: i32,
    pub signal: i32,
    /// CPUs allocated to it (requested ones while pending).
    pub cpus: u32,
    /// Wall time so far, or in all once it ended.
    pub run_time: Duration,
    /// `None` for unlimited.
    pub time_limit: Option<Duration>,
    /// The node list, empty while pending.
    pub nodes: String,
    /// For a task of an array job: the array's id and this task's index.
    pub array_job_id: Option<JobId>,
    pub array_task_id: Option<u32>,
    /// For an array's tasks that have not started yet, which Slurm reports as one record:
    /// their indexes as Slurm spells them (`3-5%2`); empty otherwise.
    pub array_pending: String,
    pub standard_output: String,
}

impl JobRecord {
    /// CPU time allocated so far (allocated CPUs × wall time), the basis of core-hour quotas.
    pub fn core_time(&self) -> Duration {
        self.run_time * self.cpus
    }

    /// Parses one line of `scontrol show job --oneliner`: `Key=Value` pairs separated by
    /// spaces, where a value may itself contain spaces (`JobName`, `WorkDir`, `Command`).
    pub(crate) fn parse(line: &str) -> Result<Self, String> {
        let fields = fields(line);
        let get = |key: &str| fields.get(key).map(String::as_str).unwrap_or("");
        let number = |key: &str| -> Result<u64, String> {
            get(key)
                .parse()
                .map_err(|_| format!("{key}={:?} is not a number", get(key)))
        };
        let (exit_code, signal) = match get("ExitCode").split_once(':') {
            Some((code, signal)) => (
                code.parse()
                    .map_err(|_| format!("ExitCode={:?}", get("ExitCode")))?,
                signal
                    .parse()
                    .map_err(|_| format!("ExitCode={:?}", get("ExitCode")))?,
            ),
            None => return Err(format!("ExitCode={:?}", get("ExitCode"))),
        };
        let array_job_id = match get("ArrayJobId") {
            "" => None,
            id => Some(id.parse().map_err(|_| format!("ArrayJobId={id:?}"))?),
        };
        let (array_task_id, array_pending) = match get("ArrayTaskId") {
            "" => (None, String::new()),
            id => match id.parse() {
                Ok(index) => (Some(index), String::new()),
                Err(_) => (None, id.to_owned()),
            },
        };
        Ok(Self {
            id: number("JobId")?,
            name: get("JobName").to_owned(),
            state: JobState::parse(get("JobState")),
            reason: get("Reason").to_owned(),
            // `UserId=nobody(65534)`
            user: get("UserId").split('(').next().unwrap_or("").to_owned(),
            partition: get("Partition").to_owned(),
            exit_code,
            signal,
            cpus: u32::try_from(number("NumCPUs")?).map_err(|e| e.to_string())?,
            run_time: duration(get("RunTime"))
                .ok_or_else(|| format!("RunTime={:?}", get("RunTime")))?,
            time_limit: match get("TimeLimit") {
                "UNLIMITED" | "Partition_Limit" => None,
                limit => Some(duration(limit).ok_or_else(|| format!("TimeLimit={limit:?}"))?),
            },
            nodes: match get("NodeList") {
                "(null)" => String::new(),
                nodes => nodes.to_owned(),
            },
            array_job_id,
            array_task_id,
            array_pending,
            standard_output: get("StdOut").to_owned(),
        })
    }
}

/// The `Key=Value` pairs of a line. A token without `=`, or whose key does not look like one,
/// continues the previous value.
fn fields(line: &str) -> HashMap<String, String> {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut last: Option<String> = None;
    for token in line.split_whitespace() {
        match token.split_once('=') {
            Some((key, value)) if is_key(key) => {
                fields.insert(key.to_owned(), value.to_owned());
                last = Some(key.to_owned());
            }
            _ => {
                if let Some(value) = last.as_ref().and_then(|key| fields.get_mut(key)) {
                    value.push(' ');
                    value.push_str(token);
                }
            }
        }
    }
    fields
}

fn is_key(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_uppercase())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '/' || c == '_')
}

/// Slurm's durations: `[days-]hours:minutes:seconds`, `minutes:seconds` or `minutes`.
fn duration(text: &str) -> Option<Duration> {
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
        None => (0, text),
    };
    let parts = clock
        .split(':')
        .map(|part| part.parse::<u64>().ok())
        .collect::<Option<Vec<_>>>()?;
    let seconds = match parts[..] {
        [h, m, s] => h * 3600 + m * 60 + s,
        [m, s] if days == 0 => m * 60 + s,
        [h, m] => h * 3600 + m * 60,
        [m] if days == 0 => m * 60,
        [h] => h * 3600,
        _ => return None,
    };
    Some(Duration::from_secs(days * 86_400 + seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED: &str = "JobId=7 JobName=two words UserId=nobody(65534) GroupId=nogroup(65534) \
        MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=FAILED \
        Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 \
        ExitCode=3:0 RunTime=00:00:02 TimeLimit=00:01:00 TimeMin=N/A Partition=debug \
        NodeList=localhost NumNodes=1 NumCPUs=2 NumTasks=1 WorkDir=/var/tmp/a dir \
        StdOut=/var/tmp/a dir/o.7";

    #[test]
    fn parses_a_finished_job_with_spaces_in_values() {
        let record = JobRecord::parse(FAILED).unwrap();
        assert_eq!(record.id, 7);
        assert_eq!(record.name, "two words");
        assert_eq!(record.state, JobState::Failed);
        assert_eq!(record.user, "nobody");
        assert_eq!((record.exit_code, record.signal), (3, 0));
        assert_eq!(record.cpus, 2);
        assert_eq!(record.run_time, Duration::from_secs(2));
        assert_eq!(record.core_time(), Duration::from_secs(4));
        assert_eq!(record.time_limit, Some(Duration::from_secs(60)));
        assert_eq!(record.standard_output, "/var/tmp/a dir/o.7");
        assert_eq!(record.array_task_id, None);
        assert!(record.state.is_terminal() && !record.state.is_success());
    }

    #[test]
    fn parses_array_tasks_pending_jobs_and_unlimited_time() {
        let line = "JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=arr UserId=u(1000) JobState=PENDING \
            Reason=Resources ExitCode=0:0 RunTime=1-02:03:04 TimeLimit=UNLIMITED Partition=debug \
            NodeList=(null) NumCPUs=1";
        let record = JobRecord::parse(line).unwrap();
        assert_eq!(
            (record.array_job_id, record.array_task_id),
            (Some(10), Some(2))
        );
        assert_eq!(record.state, JobState::Pending);
        assert!(!record.state.is_terminal());
        assert_eq!(
            record.run_time,
            Duration::from_secs(86_400 + 2 * 3600 + 3 * 60 + 4)
        );
        assert_eq!(record.time_limit, None);
        assert_eq!(record.nodes, "");
        let waiting =
            JobRecord::parse(&line.replace("ArrayTaskId=2", "ArrayTaskId=3-5%2")).unwrap();
        assert_eq!(
            (waiting.array_task_id, waiting.array_pending.as_str()),
            (None, "3-5%2")
        );
    }

    #[test]
    fn refuses_a_line_without_the_fields_it_needs() {
        assert!(JobRecord::parse("JobId=x ExitCode=0:0").is_err());
        assert!(JobRecord::parse("JobId=1 NumCPUs=1 RunTime=00:00:01").is_err());
    }

    #[test]
    fn durations_in_every_slurm_spelling() {
        assert_eq!(duration("5"), Some(Duration::from_secs(300)));
        assert_eq!(duration("1:30"), Some(Duration::from_secs(90)));
        assert_eq!(
            duration("2-1"),
            Some(Duration::from_secs(2 * 86_400 + 3600))
        );
        assert_eq!(
            duration("2-01:02"),
            Some(Duration::from_secs(2 * 86_400 + 3720))
        );
        assert_eq!(duration("x"), None);
        assert_eq!(duration("1:2:3:4"), None);
    }

    #[test]
    fn unknown_states_are_kept_and_not_terminal() {
        assert_eq!(
            JobState::parse("REQUEUED"),
            JobState::Other("REQUEUED".into())
        );
        assert!(!JobState::parse("REQUEUED").is_terminal());
        assert!(JobState::parse("TIMEOUT").is_terminal());
    }
}

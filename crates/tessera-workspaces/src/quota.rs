//! Quotas (the original's `UserQuota`, tracked but never enforced there): disk space and
//! core hours per user, used amounts computed from the records (the workspaces' scanned
//! `disk_space`, the jobs' `core_hours`). A start is refused once the core hours are used
//! up; a create or upload that would pass the disk limit is refused before anything is
//! written.

use serde_json::{Value, json};

use crate::service::Reply;
use crate::{Error, Kind, Result, Uws};

/// Limits every user has; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quota {
    /// Bytes of workspace files.
    pub max_disk_space: Option<i64>,
    /// Core hours of jobs.
    pub max_core_hours: Option<f64>,
}

/// What a user has used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Used {
    /// Bytes in the user's workspaces.
    pub disk_space: i64,
    /// Core hours of the user's jobs.
    pub core_hours: f64,
}

impl Uws {
    /// What user `id` has used.
    pub fn used(&self, user_id: i64) -> Used {
        let tables = self.records.read();
        Used {
            disk_space: tables
                .workspaces
                .values()
                .filter(|w| w.user_id == Some(user_id))
                .map(|w| w.disk_space)
                .sum(),
            core_hours: tables
                .jobs
                .values()
                .filter(|j| j.user_id == Some(user_id))
                .filter_map(|j| j.core_hours.parse::<f64>().ok())
                .fold(0.0, |a, b| a + b),
        }
    }

    /// Refuses a start once the core hours are used up.
    pub(crate) fn check_core_hours(&self, user_id: i64) -> Result<()> {
        let Some(max) = self.settings().quota.max_core_hours else {
            return Ok(());
        };
        let used = self.used(user_id).core_hours;
        if used >= max {
            return Err(Error::refused(
                Kind::Forbidden,
                format!("Core hour quota exceeded: {used:.5} of {max:.5} core hours used."),
            ));
        }
        Ok(())
    }

    /// Refuses writing `adding` more bytes past the disk limit.
    pub(crate) fn check_disk_space(&self, user_id: i64, adding: i64) -> Result<()> {
        let Some(max) = self.settings().quota.max_disk_space else {
            return Ok(());
        };
        let used = self.used(user_id).disk_space;
        if used.saturating_add(adding) > max {
            return Err(Error::refused(
                Kind::Forbidden,
                format!(
                    "Disk space quota exceeded: {used} bytes used, {adding} more requested, \
                     {max} allowed."
                ),
            ));
        }
        Ok(())
    }

    /// `GET /quota/`: the caller's limits and use.
    pub fn quota(&self, user_id: i64) -> Reply {
        let used = self.used(user_id);
        let quota = self.settings().quota;
        let data: Value = json!({
            "quota": {
                "disk_space": {"used": used.disk_space, "max": quota.max_disk_space},
                "core_hours": {
                    "used": format!("{:.5}", used.core_hours),
                    "max": quota.max_core_hours.map(|m| format!("{m:.5}")),
                },
            }
        });
        Reply::with_data("Successful.", data)
    }
}

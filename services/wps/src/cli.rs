//! The commands of `wps` beyond the shared ones (`serve`, `run-rest`, `consume-events`,
//! `migrate-db`, `config`, which `tessera-service` provides): `wps grants add|list|revoke`.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use clap::{Args, Subcommand};
use serde_json::json;
use tessera_work_orders::datetime::{format_pydantic, parse_rfc3339};
use tessera_work_orders::{Grant, GrantKind, SystemClock};
use uuid::Uuid;

use crate::config::WpsConfig;
use crate::prepare::{open_documents, prepare_grants};
use crate::{Error, Result};

/// The commands of `wps` beyond the shared ones of `tessera-service`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the embedded grant store: who may download which dataset or upload to which
    /// box, and until when (used when access_url is unset)
    #[command(subcommand)]
    Grants(GrantsCommand),
}

/// `wps grants …`
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Grant a user download access to a dataset or upload access to a box; prints the grant
    Add(AddGrant),
    /// Print grants (of one user, or all) as JSON lines, valid or not
    List {
        /// Only the grants of this user (UUID)
        #[arg(long)]
        user: Option<Uuid>,
    },
    /// Revoke a grant by its id
    Revoke {
        /// The grant id printed by `wps grants add` or `wps grants list`
        grant_id: Uuid,
    },
}

/// `wps grants add`
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("resource").required(true).args(["dataset", "upload_box"])))]
#[command(group(clap::ArgGroup::new("validity").args(["valid_days", "until"])))]
pub struct AddGrant {
    /// The user (internal user UUID)
    #[arg(long)]
    pub user: Uuid,
    /// Grant download access to this dataset (accession)
    #[arg(long)]
    pub dataset: Option<String>,
    /// Grant upload access to this research data upload box (UUID)
    #[arg(long = "box", value_name = "BOX_ID")]
    pub upload_box: Option<Uuid>,
    /// Valid for this many days from now (default 365)
    #[arg(long, value_name = "N")]
    pub valid_days: Option<u32>,
    /// Valid until this RFC 3339 time, e.g. 2027-01-01T00:00:00Z
    #[arg(long, value_name = "RFC3339")]
    pub until: Option<String>,
}

/// The default validity of a grant without `--valid-days` or `--until`.
pub const DEFAULT_GRANT_DAYS: u32 = 365;

fn grant_json(grant: &Grant) -> serde_json::Value {
    json!({
        "id": grant.id,
        "user_id": grant.user_id,
        "kind": grant.kind.as_str(),
        "resource_id": grant.resource_id,
        "valid_from": format_pydantic(&grant.valid_from),
        "valid_until": format_pydantic(&grant.valid_until),
    })
}

pub(crate) fn print_line(out: &mut impl Write, value: &serde_json::Value) -> Result<()> {
    writeln!(out, "{value}").map_err(|e| Error::Internal(format!("cannot write output: {e}")))
}

fn valid_until(args: &AddGrant, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Some(until) = &args.until {
        return parse_rfc3339(until)
            .map_err(|e| Error::Usage(format!("--until {until:?} is not an RFC 3339 time: {e}")));
    }
    let days = args.valid_days.unwrap_or(DEFAULT_GRANT_DAYS);
    now.checked_add_signed(TimeDelta::days(i64::from(days)))
        .ok_or_else(|| Error::Usage(format!("--valid-days {days} is too large")))
}

/// Runs `wps grants …`, writing to `out`.
pub async fn grants(config: &WpsConfig, cmd: GrantsCommand, out: &mut impl Write) -> Result<()> {
    if config.access_url.is_some() {
        tracing::warn!("access_url is set: the service asks the access API, not these grants");
    }
    let documents = open_documents(config, None, None).await?;
    let grants = prepare_grants(config, documents.factory.as_ref(), Arc::new(SystemClock)).await?;
    match cmd {
        GrantsCommand::Add(args) => {
            let now = Utc::now();
            let until = valid_until(&args, now)?;
            let (kind, resource) = match (&args.dataset, args.upload_box) {
                (Some(dataset), None) => (GrantKind::Download, dataset.clone()),
                (None, Some(upload_box)) => (GrantKind::Upload, upload_box.to_string()),
                _ => {
                    return Err(Error::Usage(
                        "give exactly one of --dataset and --box".into(),
                    ));
                }
            };
            let grant = grants
                .add(args.user, kind, &resource, now, until)
                .await
                .map_err(|e| match e {
                    tessera_work_orders::Error::Validation(m) => Error::Usage(m),
                    other => Error::Domain(other),
                })?;
            print_line(out, &grant_json(&grant))
        }
        GrantsCommand::List { user } => {
            for grant in grants.list(user).await? {
                print_line(out, &grant_json(&grant))?;
            }
            Ok(())
        }
        GrantsCommand::Revoke { grant_id } => {
            if grants.revoke(grant_id).await? {
                print_line(out, &json!({"revoked": grant_id}))
            } else {
                Err(Error::NotFound(format!("no grant with id {grant_id}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tessera_service::cli::{self, Command as Parsed, Shared};

    fn parse(args: &[&str]) -> Result<Parsed<Command>, clap::Error> {
        cli::parse::<crate::Core>(args)
    }

    #[test]
    fn the_command_line_is_consistent_and_defaults_to_serve() {
        cli::command::<crate::Core>().debug_assert();
        let help = cli::command::<crate::Core>().render_help().to_string();
        assert!(
            help.starts_with("GHGA's Work Package Service"),
            "the about line is the service's: {help}"
        );
        assert!(matches!(parse(&["wps"]), Ok(Parsed::Shared(Shared::Serve))));
        let user = "5f0c4b5e-2b3e-4a6f-9c1d-7e8f9a0b1c2d";
        let parsed = parse(&[
            "wps",
            "grants",
            "add",
            "--user",
            user,
            "--dataset",
            "DS1",
            "--valid-days",
            "3",
        ]);
        assert!(matches!(
            parsed,
            Ok(Parsed::Service(Command::Grants(GrantsCommand::Add(
                AddGrant {
                    valid_days: Some(3),
                    ..
                }
            ))))
        ));
        for bad in [
            vec!["wps", "grants", "add", "--user", user],
            vec!["wps", "grants", "add", "--user", "x", "--dataset", "DS1"],
            vec![
                "wps",
                "grants",
                "add",
                "--user",
                user,
                "--dataset",
                "DS1",
                "--box",
                user,
            ],
            vec![
                "wps",
                "grants",
                "add",
                "--user",
                user,
                "--dataset",
                "DS1",
                "--valid-days",
                "1",
                "--until",
                "2030-01-01T00:00:00Z",
            ],
        ] {
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn validity_comes_from_until_or_days() {
        let now = Utc::now();
        let mut args = AddGrant {
            user: Uuid::new_v4(),
            dataset: Some("DS1".into()),
            upload_box: None,
            valid_days: None,
            until: None,
        };
        assert_eq!(valid_until(&args, now).unwrap(), now + TimeDelta::days(365));
        args.valid_days = Some(2);
        assert_eq!(valid_until(&args, now).unwrap(), now + TimeDelta::days(2));
        args.until = Some("2030-01-01T01:00:00+01:00".into());
        assert_eq!(
            valid_until(&args, now).unwrap(),
            parse_rfc3339("2030-01-01T00:00:00Z").unwrap()
        );
        args.until = Some("2030-01-01".into());
        assert!(matches!(valid_until(&args, now), Err(Error::Usage(_))));
    }
}

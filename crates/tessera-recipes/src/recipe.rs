//! Recipes (§B5 as of v0.3.0): `meta.yml` with unknown fields refused everywhere, the
//! shell workflow's commands, inputs (`url`, `dataone`) and outputs (`pvc`, `temporary`,
//! `dataone`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The recipe's metadata file.
pub const META_FILE: &str = "meta.yml";

/// Why a recipe is invalid. Messages name the file and field, never a server path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The recipe directory has no `meta.yml`.
    #[error("Recipe directory not found or without meta.yml: {0}")]
    MissingMeta(String),
    /// `meta.yml` does not parse or breaks a rule.
    #[error("Invalid meta.yml: {0}")]
    Invalid(String),
    /// A file `meta.yml` names is not there.
    #[error("The file {0} is not present in the recipe directory")]
    MissingFile(String),
    /// `recipe_path` is not allowed (scheme, host or outside the local root).
    #[error("Recipe path not allowed: {0}")]
    PathNotAllowed(String),
    /// The recipe could not be fetched.
    #[error("Cannot read the recipe: {0}")]
    Unreadable(String),
}

/// `parallel` of a workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parallel {
    /// Whether commands run per partition of input files.
    #[serde(default)]
    pub enabled: bool,
    /// Only `files`.
    #[serde(default)]
    pub partition_strategy: PartitionStrategy,
    /// Files per partition (≥ 1); [`DEFAULT_PARTITION_SIZE`] when absent.
    #[serde(default)]
    pub partition_size: Option<u32>,
    /// Partitions at once (≥ 1), never more than the service's limit
    /// (`OGDC_MAX_PARALLEL_LIMIT`); the limit when absent.
    #[serde(default)]
    pub max_parallelism: Option<u32>,
}

/// Files per partition when `partition_size` is absent (the original's default).
pub const DEFAULT_PARTITION_SIZE: usize = 1000;

/// How inputs are partitioned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionStrategy {
    /// A number of files per partition.
    #[default]
    Files,
}

/// `workflow` of `meta.yml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Workflow {
    /// Commands of `sh_file`, one per non-comment line.
    Shell(ShellWorkflow),
    /// The pdgworkflow visualization.
    Visualization(VizWorkflow),
}

/// The shell workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellWorkflow {
    /// The commands file in the recipe directory.
    #[serde(default = "default_sh_file")]
    pub sh_file: String,
    /// Parallel execution.
    #[serde(default)]
    pub parallel: Parallel,
}

fn default_sh_file() -> String {
    "recipe.sh".into()
}

/// The visualization workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VizWorkflow {
    /// A JSON config file in the recipe directory; `{}` when absent.
    #[serde(default)]
    pub config_file: Option<String>,
    /// Files per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Parallel execution.
    #[serde(default)]
    pub parallel: Parallel,
}

fn default_batch_size() -> u32 {
    250
}

/// One input parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum InputParam {
    /// A file fetched over HTTP(S).
    Url(UrlInput),
    /// Files of a DataONE dataset.
    Dataone(DataoneInput),
    /// Files of a persistent volume claim, read in place (not mixable with the others).
    #[serde(rename = "pvc_mount")]
    PvcMount(PvcMountInput),
}

/// `type: pvc_mount`: the files under `path` of claim `claim_name` matching `glob` at any
/// depth (Python's `rglob`), mounted read-only at `/mnt/data/<claim_name>` on Argo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PvcMountInput {
    /// The claim (a DNS label); the workflow volume's or one the service allows.
    pub claim_name: String,
    /// A directory inside the claim.
    pub path: String,
    /// Which files, relative to `path`.
    #[serde(default = "default_glob")]
    pub glob: String,
}

fn default_glob() -> String {
    "*".into()
}

impl PvcMountInput {
    /// `path` without its leading and trailing `/` (`""` for the claim's root).
    pub fn relative_path(&self) -> &str {
        self.path.trim_matches('/')
    }
}

/// A DNS label (RFC 1123): 1 to 63 of `a-z0-9-`, starting and ending alphanumeric.
pub fn is_dns_label(name: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (1..=63).contains(&name.len())
        && edge(name.chars().next())
        && edge(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether `path` has a `..` segment (or a NUL).
fn climbs(path: &str) -> bool {
    path.contains('\0') || path.split('/').any(|seg| seg == "..")
}

/// `type: url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlInput {
    /// The URL (http or https).
    pub value: String,
}

/// `type: dataone`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataoneInput {
    /// The dataset package identifier.
    pub dataset_identifier: String,
    /// One file of it; all when absent.
    #[serde(default)]
    pub filename: Option<String>,
}

/// `input` of `meta.yml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// At least one parameter.
    pub params: Vec<InputParam>,
}

/// Where the results go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Output {
    /// The workflow volume, under the recipe id (the default); published once.
    #[default]
    Pvc,
    /// A zip in object storage, handed out by `/output`.
    Temporary,
    /// DataONE (not implemented by the original either).
    Dataone(DataoneOutput),
}

/// `type: dataone` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataoneOutput {
    /// Always `TODO` in the original.
    #[serde(default = "todo_id")]
    pub dataone_id: String,
}

fn todo_id() -> String {
    "TODO".into()
}

/// `meta.yml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// `^[a-zA-Z0-9 .-]+$`.
    pub name: String,
    /// The workflow.
    pub workflow: Workflow,
    /// The inputs.
    pub input: Input,
    /// The output.
    #[serde(default)]
    pub output: Output,
}

impl Meta {
    /// Parses and checks `meta.yml`'s text.
    pub fn parse(yaml: &str) -> Result<Self, Error> {
        let meta: Self = serde_yaml::from_str(yaml).map_err(|e| Error::Invalid(e.to_string()))?;
        if meta.name.is_empty()
            || !meta
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '-'))
        {
            return Err(Error::Invalid(format!(
                "name: String should match pattern '^[a-zA-Z0-9 .-]+$', got {:?}",
                meta.name
            )));
        }
        if meta.input.params.is_empty() {
            return Err(Error::Invalid(
                "input.params: At least one input parameter is required".into(),
            ));
        }
        for (i, param) in meta.input.params.iter().enumerate() {
            match param {
                InputParam::Url(url) => {
                    let lower = url.value.to_ascii_lowercase();
                    if !(lower.starts_with("https://") || lower.starts_with("http://"))
                        || url.value.len() <= "http://".len()
                    {
                        return Err(Error::Invalid(format!(
                            "input.params.{i}.value: must be an http or https URL, got {:?}",
                            url.value
                        )));
                    }
                }
                InputParam::Dataone(d) if d.dataset_identifier.trim().is_empty() => {
                    return Err(Error::Invalid(format!(
                        "input.params.{i}.dataset_identifier: must not be empty"
                    )));
                }
                InputParam::Dataone(_) => {}
                InputParam::PvcMount(pvc) => {
                    if !is_dns_label(&pvc.claim_name) {
                        return Err(Error::Invalid(format!(
                            "input.params.{i}.claim_name: must be a DNS label (a-z, 0-9 and -, at most 63), got {:?}",
                            pvc.claim_name
                        )));
                    }
                    if climbs(&pvc.path) {
                        return Err(Error::Invalid(format!(
                            "input.params.{i}.path: must not contain '..', got {:?}",
                            pvc.path
                        )));
                    }
                    if pvc.glob.is_empty() || pvc.glob.starts_with('/') || climbs(&pvc.glob) {
                        return Err(Error::Invalid(format!(
                            "input.params.{i}.glob: must be a relative pattern without '..', got {:?}",
                            pvc.glob
                        )));
                    }
                }
            }
        }
        let pvcs = meta
            .input
            .params
            .iter()
            .filter(|p| matches!(p, InputParam::PvcMount(_)))
            .count();
        if pvcs > 0 && pvcs < meta.input.params.len() {
            return Err(Error::Invalid(
                "input.params: pvc_mount inputs cannot be mixed with url or dataone inputs".into(),
            ));
        }
        let parallel = match &meta.workflow {
            Workflow::Shell(w) => &w.parallel,
            Workflow::Visualization(w) => &w.parallel,
        };
        if parallel.partition_size == Some(0) {
            return Err(Error::Invalid(
                "workflow.parallel.partition_size: must be at least 1".into(),
            ));
        }
        if parallel.max_parallelism == Some(0) {
            return Err(Error::Invalid(
                "workflow.parallel.max_parallelism: must be at least 1".into(),
            ));
        }
        for file in meta.files() {
            check_file_name(&file)?;
        }
        Ok(meta)
    }

    /// The recipe id: the name lower-cased, spaces as `-`.
    pub fn id(&self) -> String {
        self.name.to_lowercase().replace(' ', "-")
    }

    /// The other files of the recipe directory that `meta.yml` names.
    pub fn files(&self) -> Vec<String> {
        match &self.workflow {
            Workflow::Shell(w) => vec![w.sh_file.clone()],
            Workflow::Visualization(w) => w.config_file.iter().cloned().collect(),
        }
    }
}

/// A file named by `meta.yml` must be a plain name inside the recipe directory.
fn check_file_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(Error::Invalid(format!(
            "file {name:?} must be a relative path inside the recipe directory"
        )));
    }
    Ok(())
}

/// A validated recipe: its metadata, id and commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipe {
    /// `meta.yml`.
    pub meta: Meta,
    /// The recipe id.
    pub id: String,
    /// The shell commands, in order (empty for visualization).
    pub commands: Vec<String>,
    /// The visualization config (JSON text), `{}` by default.
    pub viz_config: Option<String>,
}

impl Recipe {
    /// Builds the recipe from `meta` and the files it names (`files` by name).
    pub fn new(meta: Meta, files: &BTreeMap<String, String>) -> Result<Self, Error> {
        let id = meta.id();
        let (commands, viz_config) = match &meta.workflow {
            Workflow::Shell(w) => {
                let text = files
                    .get(&w.sh_file)
                    .ok_or_else(|| Error::MissingFile(w.sh_file.clone()))?;
                (commands(text), None)
            }
            Workflow::Visualization(w) => match &w.config_file {
                Some(name) => {
                    let text = files
                        .get(name)
                        .ok_or_else(|| Error::MissingFile(name.clone()))?;
                    serde_json::from_str::<serde_json::Value>(text).map_err(|e| {
                        Error::Invalid(format!("Failed to read json from {name}: {e}"))
                    })?;
                    (Vec::new(), Some(text.clone()))
                }
                None => (Vec::new(), Some("{}".into())),
            },
        };
        if matches!(meta.workflow, Workflow::Shell(_)) && commands.is_empty() {
            return Err(Error::Invalid("the sh_file holds no command".into()));
        }
        Ok(Self {
            meta,
            id,
            commands,
            viz_config,
        })
    }

    /// Parses `meta.yml` and builds the recipe, reading the files it names with `read`.
    pub fn parse(
        meta_yml: &str,
        mut read: impl FnMut(&str) -> Result<Option<String>, Error>,
    ) -> Result<Self, Error> {
        let meta = Meta::parse(meta_yml)?;
        let mut files = BTreeMap::new();
        for name in meta.files() {
            match read(&name)? {
                Some(text) => {
                    files.insert(name, text);
                }
                None => return Err(Error::MissingFile(name)),
            }
        }
        Self::new(meta, &files)
    }

    /// The output.
    pub fn output(&self) -> &Output {
        &self.meta.output
    }

    /// The URL inputs.
    pub fn urls(&self) -> Vec<&str> {
        self.meta
            .input
            .params
            .iter()
            .filter_map(|p| match p {
                InputParam::Url(u) => Some(u.value.as_str()),
                InputParam::Dataone(_) | InputParam::PvcMount(_) => None,
            })
            .collect()
    }

    /// The `pvc_mount` inputs, in order.
    pub fn pvc_inputs(&self) -> Vec<&PvcMountInput> {
        self.meta
            .input
            .params
            .iter()
            .filter_map(|p| match p {
                InputParam::PvcMount(p) => Some(p),
                InputParam::Url(_) | InputParam::Dataone(_) => None,
            })
            .collect()
    }

    /// The DataONE inputs, in order.
    pub fn dataone_inputs(&self) -> Vec<&DataoneInput> {
        self.meta
            .input
            .params
            .iter()
            .filter_map(|p| match p {
                InputParam::Dataone(d) => Some(d),
                InputParam::Url(_) | InputParam::PvcMount(_) => None,
            })
            .collect()
    }

    /// Replaces the DataONE inputs, in order, by the object URLs they resolved to (the
    /// original resolves them when it validates the recipe, so the engines fetch URLs
    /// only). `resolved` has one list per DataONE input.
    pub fn resolve_dataone(&mut self, resolved: Vec<Vec<String>>) {
        let mut resolved = resolved.into_iter();
        let params = std::mem::take(&mut self.meta.input.params);
        for param in params {
            match param {
                InputParam::Dataone(_) => self.meta.input.params.extend(
                    resolved
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|value| InputParam::Url(UrlInput { value })),
                ),
                other @ (InputParam::Url(_) | InputParam::PvcMount(_)) => {
                    self.meta.input.params.push(other);
                }
            }
        }
    }

    /// Whether its workflow asks for parallel (partitioned) execution.
    pub fn is_parallel(&self) -> bool {
        self.parallel().enabled
    }

    /// Its workflow's `parallel`.
    pub fn parallel(&self) -> &Parallel {
        match &self.meta.workflow {
            Workflow::Shell(w) => &w.parallel,
            Workflow::Visualization(w) => &w.parallel,
        }
    }

    /// Files per partition of a parallel run.
    pub fn partition_size(&self) -> usize {
        self.parallel()
            .partition_size
            .map_or(DEFAULT_PARTITION_SIZE, |n| n.max(1) as usize)
    }

    /// Partitions at once of a parallel run, under the service's `limit`.
    pub fn max_parallelism(&self, limit: usize) -> usize {
        let limit = limit.max(1);
        self.parallel()
            .max_parallelism
            .map_or(limit, |n| (n as usize).clamp(1, limit))
    }

    /// Whether it is a shell workflow.
    pub fn is_shell(&self) -> bool {
        matches!(self.meta.workflow, Workflow::Shell(_))
    }
}

/// Each non-empty line not starting with `#` is one command (the original's rule).
pub fn commands(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const META: &str = "name: Seal Tags 2.0\nworkflow:\n  type: shell\n  sh_file: recipe.sh\ninput:\n  params:\n    - type: url\n      value: https://example.org/a.csv\noutput:\n  type: temporary\n";

    fn files(sh: &str) -> impl FnMut(&str) -> Result<Option<String>, Error> {
        let sh = sh.to_owned();
        move |name| Ok((name == "recipe.sh").then(|| sh.clone()))
    }

    #[test]
    fn a_shell_recipe_parses_with_its_id_and_commands() {
        let recipe = Recipe::parse(META, files("# c\n\nmkdir x\r\ncp a b\n")).unwrap();
        assert_eq!(recipe.id, "seal-tags-2.0");
        assert_eq!(recipe.commands, ["mkdir x", "cp a b"]);
        assert_eq!(recipe.output(), &Output::Temporary);
        assert_eq!(recipe.urls(), ["https://example.org/a.csv"]);
    }

    #[test]
    fn defaults_are_the_originals() {
        let meta = Meta::parse(
            "name: x\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: dataone\n      dataset_identifier: resource_map_urn:uuid:1\n",
        )
        .unwrap();
        assert_eq!(meta.output, Output::Pvc);
        assert_eq!(meta.files(), ["recipe.sh"]);
        let Workflow::Shell(w) = &meta.workflow else {
            panic!("shell expected")
        };
        assert_eq!(w.parallel, Parallel::default());
    }

    #[test]
    fn pvc_mount_inputs_default_to_every_file() {
        let meta = META.replace(
            "type: url\n      value: https://example.org/a.csv",
            "type: pvc_mount\n      claim_name: arctic-dem-pvc\n      path: /tiles/v3/",
        );
        let recipe = Recipe::parse(&meta, files("ls")).unwrap();
        let pvcs = recipe.pvc_inputs();
        assert_eq!(pvcs.len(), 1);
        assert_eq!(pvcs[0].glob, "*");
        assert_eq!(pvcs[0].relative_path(), "tiles/v3");
        assert!(recipe.urls().is_empty());
        assert!(is_dns_label("a") && is_dns_label("a-1") && !is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)) && !is_dns_label("a."));
    }

    #[test]
    fn partitions_default_to_1000_files_and_parallelism_stays_under_the_limit() {
        let parallel = |extra: &str| {
            let meta = META.replace(
                "sh_file: recipe.sh",
                &format!("sh_file: recipe.sh\n  parallel:\n    enabled: true{extra}"),
            );
            Recipe::parse(&meta, files("ls")).unwrap()
        };
        let plain = parallel("");
        assert!(plain.is_parallel());
        assert_eq!(plain.partition_size(), 1000);
        assert_eq!(plain.max_parallelism(5), 5);
        let set = parallel("\n    partition_size: 2\n    max_parallelism: 3");
        assert_eq!(set.partition_size(), 2);
        assert_eq!(set.max_parallelism(5), 3);
        assert_eq!(set.max_parallelism(2), 2);
        assert!(!Recipe::parse(META, files("ls")).unwrap().is_parallel());
    }

    #[test]
    fn invalid_recipes_are_refused_with_the_field() {
        let cases = [
            (META.replace("Seal Tags 2.0", "bad/name"), "name"),
            (
                META.replace("sh_file: recipe.sh", "sh_file: ../etc/passwd"),
                "relative path",
            ),
            (
                META.replace("output:\n  type: temporary\n", "extra: 1\n"),
                "unknown field `extra`",
            ),
            (
                META.replace("type: temporary", "type: s3"),
                "unknown variant `s3`",
            ),
            (
                META.replace("type: url\n      value: https://example.org/a.csv", "type: pvc_mount\n      claim_name: Big_Claim\n      path: /x"),
                "claim_name: must be a DNS label",
            ),
            (
                META.replace("type: url\n      value: https://example.org/a.csv", "type: pvc_mount\n      claim_name: data\n      path: /x/../etc"),
                "path: must not contain '..'",
            ),
            (
                META.replace("type: url\n      value: https://example.org/a.csv", "type: pvc_mount\n      claim_name: data\n      path: /x\n      glob: /etc/*"),
                "glob: must be a relative pattern",
            ),
            (
                META.replace("type: url\n      value: https://example.org/a.csv", "type: pvc_mount\n      claim_name: data\n      path: /x\n      value: y"),
                "unknown field `value`",
            ),
            (
                META.replace("    - type: url\n", "    - type: pvc_mount\n      claim_name: data\n      path: /x\n    - type: url\n"),
                "cannot be mixed",
            ),
            (
                META.replace("https://example.org/a.csv", "file:///etc/passwd"),
                "http or https",
            ),
            (
                META.replace("value: https", "valu: https"),
                "unknown field `valu`",
            ),
            (
                META.replace(
                    "sh_file: recipe.sh",
                    "sh_file: recipe.sh\n  parallel:\n    max_workers: 2",
                ),
                "unknown field `max_workers`",
            ),
            (
                META.replace(
                    "sh_file: recipe.sh",
                    "sh_file: recipe.sh\n  parallel:\n    partition_size: 0",
                ),
                "partition_size",
            ),
            (
                META.replace(
                    "sh_file: recipe.sh",
                    "sh_file: recipe.sh\n  parallel:\n    max_parallelism: 0",
                ),
                "max_parallelism",
            ),
            (
                "name: x\nworkflow:\n  type: shell\ninput:\n  params: []\n".into(),
                "At least one",
            ),
            ("name: x\n".into(), "missing field `workflow`"),
        ];
        for (yaml, expected) in cases {
            let err = Recipe::parse(&yaml, files("ls")).unwrap_err();
            assert!(err.to_string().contains(expected), "{yaml}: {err}");
        }
        let err = Recipe::parse(META, |_| Ok(None)).unwrap_err();
        assert_eq!(err, Error::MissingFile("recipe.sh".into()));
        assert_eq!(
            err.to_string(),
            "The file recipe.sh is not present in the recipe directory"
        );
        let err = Recipe::parse(META, files("# only a comment\n")).unwrap_err();
        assert!(err.to_string().contains("no command"));
    }

    #[test]
    fn visualization_config_must_be_json() {
        let yaml = "name: viz\nworkflow:\n  type: visualization\n  config_file: config.json\ninput:\n  params:\n    - type: url\n      value: http://x/y\n";
        let ok = Recipe::parse(yaml, |_| Ok(Some("{\"a\":1}".into()))).unwrap();
        assert_eq!(ok.viz_config.as_deref(), Some("{\"a\":1}"));
        let err = Recipe::parse(yaml, |_| Ok(Some("{".into()))).unwrap_err();
        assert!(
            err.to_string()
                .contains("Failed to read json from config.json")
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(yaml in ".{0,300}") {
            let _ = Recipe::parse(&yaml, |_| Ok(Some("ls".into())));
        }

        #[test]
        fn accepted_names_give_safe_ids(name in "[a-zA-Z0-9 .-]{1,40}") {
            let yaml = META.replace("Seal Tags 2.0", &format!("'{name}'"));
            if let Ok(recipe) = Recipe::parse(&yaml, |_| Ok(Some("ls".into()))) {
                proptest::prop_assert!(recipe.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'));
            }
        }
    }
}

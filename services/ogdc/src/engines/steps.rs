//! The steps a shell recipe's run shares between the engines that run it outside
//! containers (the local executor, Slurm): work directories handed to the run's account,
//! inputs fetched into the fetch step's `output_dir`, the containers' `/input_dir` and
//! `/output_dir` rewritten to a step's directories, and publishing the last step's
//! directory to the volume (`pvc`) or as a zip into object storage (`temporary`).
//!
//! A parallel recipe (`workflow.parallel.enabled`) runs as the original's partitions: the
//! fetched files, in input order, are split into partitions of `partition_size` files
//! (each partition's list kept as `partition-manifests/inputs/partition-<n>.json`); every
//! partition runs the commands in order, each command once per file with `$INPUT_FILE`
//! and `$OUTPUT_FILE` set (the first reads the partition's inputs, the next ones the
//! previous command's output in that partition); what the last command wrote in every
//! partition is merged and published.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tessera_kit::objects::{ObjectKey, ObjectStore, PutRequest};
use tessera_recipes::engine::EngineError;
use tessera_recipes::recipe::{InputParam, PvcMountInput};
use tessera_recipes::{Output, Recipe, RunOutput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fetch::Fetcher;

/// The claims `pvc_mount` inputs may read, and where their files are on this machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// The workflow volume's claim (`OGDC_WORKFLOW_PVC_NAME`)...
    pub workflow_claim: String,
    /// ...which is this directory (`pvc` outputs).
    pub workflow_dir: PathBuf,
    /// Other claims (`OGDC_ALLOWED_INPUT_PVCS`)...
    pub allowed: Vec<String>,
    /// ...each `<root>/<claim>/`.
    pub root: PathBuf,
}

impl Claims {
    /// Where `claim`'s files are, if it is allowed.
    pub fn dir(&self, claim: &str) -> Option<PathBuf> {
        if claim == self.workflow_claim {
            Some(self.workflow_dir.clone())
        } else if self.allowed.iter().any(|c| c == claim) {
            Some(self.root.join(claim))
        } else {
            None
        }
    }
}

/// Refuses what an engine running shell steps outside containers cannot run: a
/// visualization workflow, DataONE inputs not resolved to URLs. `engine` names it in the
/// message.
pub(crate) fn check_runnable(recipe: &Recipe, engine: &str) -> Result<(), EngineError> {
    if !recipe.is_shell() {
        return Err(EngineError::Unsupported(format!(
            "the {engine} runs shell workflows only"
        )));
    }
    if !recipe.dataone_inputs().is_empty() {
        return Err(EngineError::Unsupported(format!(
            "the {engine} fetches url and pvc_mount inputs only"
        )));
    }
    Ok(())
}

/// One command of a run, as the engines outside containers run it: `script` (the command,
/// or its per-file loop) in `dir`, reading `input` and writing `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// `step-<i> (run-cmd-<i>)`, with the partition for a parallel run.
    pub label: String,
    /// The recipe's command.
    pub command: String,
    pub dir: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    pub script: String,
}

/// Where a sequential run's inputs are fetched (the fetch step's `output_dir`).
pub(crate) fn fetched_dir(work: &Path, id: &str) -> PathBuf {
    work.join(format!("{id}-fetch-template")).join("output_dir")
}

/// The steps of a sequential run in `work`: command `i` in `step-<i>/`, reading the
/// previous step's `output_dir` (the fetched inputs for the first).
pub(crate) fn sequential_steps(work: &Path, recipe: &Recipe) -> Vec<Step> {
    let mut input = fetched_dir(work, &recipe.id);
    let mut steps = Vec::with_capacity(recipe.commands.len());
    for (i, command) in recipe.commands.iter().enumerate() {
        let dir = work.join(format!("step-{i}"));
        let output = dir.join("output_dir");
        steps.push(Step {
            label: format!("step-{i} (run-cmd-{i})"),
            command: command.clone(),
            script: replace_dirs(command, &input, &output),
            input: std::mem::replace(&mut input, output.clone()),
            output,
            dir,
        });
    }
    steps
}

/// The directory of partition `n` of a parallel run in `work`.
pub(crate) fn partition_dir(work: &Path, n: usize) -> PathBuf {
    work.join(format!("partition-{n}"))
}

/// The steps of partition `n`: command `i` in `partition-<n>/run-cmd-<i>/`, once per file
/// of the partition's `inputs/` (first command) or of the previous command's `output_dir`.
pub(crate) fn partition_steps(work: &Path, recipe: &Recipe, n: usize) -> Vec<Step> {
    let part = partition_dir(work, n);
    let mut input = part.join("inputs");
    let mut steps = Vec::with_capacity(recipe.commands.len());
    for (i, command) in recipe.commands.iter().enumerate() {
        let dir = part.join(format!("run-cmd-{i}"));
        let output = dir.join("output_dir");
        steps.push(Step {
            label: format!("partition-{n} step-{i} (run-cmd-{i})"),
            command: command.clone(),
            script: per_file_script(
                command,
                &input.display().to_string(),
                &output.display().to_string(),
            ),
            input: std::mem::replace(&mut input, output.clone()),
            output,
            dir,
        });
    }
    steps
}

/// `s` as one shell word.
pub(crate) fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The original's per-file loop (POSIX sh): `command` once per regular file of `input`
/// (not recursing, dot files skipped), with `INPUT_FILE` and `OUTPUT_FILE` (same name in
/// `output`) exported and the containers' `/input_dir` and `/output_dir` rewritten to
/// `input` and `output`. The command runs in a subshell on lines of its own, so a `cd`,
/// an `exit` or a trailing comment stays within one file; the first failure ends the loop.
pub(crate) fn per_file_script(command: &str, input: &str, output: &str) -> String {
    let command = replace_dirs(command, Path::new(input), Path::new(output));
    format!(
        "set -eu\nfor INPUT_FILE in {input_q}/*; do\n\
         [ -f \"$INPUT_FILE\" ] || continue\n\
         OUTPUT_FILE={output_q}/\"${{INPUT_FILE##*/}}\"\n\
         export INPUT_FILE OUTPUT_FILE\n\
         echo \"file: ${{INPUT_FILE##*/}}\"\n\
         (\n{command}\n)\ndone\n",
        input_q = quoted(input),
        output_q = quoted(output),
    )
}

/// Splits `files` (in input order, duplicates dropped) into partitions of `size`: moves
/// each partition's files into its `inputs/` and writes its manifest (the file names,
/// JSON) to `partition-manifests/inputs/partition-<n>.json`, everything owned by `run_as`
/// when set. Returns how many partitions there are.
pub(crate) async fn lay_out_partitions(
    work: &Path,
    files: &[PathBuf],
    size: usize,
    run_as: Option<(u32, u32)>,
) -> Result<usize, String> {
    let mut seen = std::collections::HashSet::new();
    let files: Vec<&PathBuf> = files.iter().filter(|f| seen.insert(*f)).collect();
    let manifests = work.join("partition-manifests").join("inputs");
    make_dir(&manifests, run_as).await?;
    let chunks: Vec<_> = files.chunks(size.max(1)).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        // The partition's directory too is the run's account's: its commands write there.
        make_dir(&partition_dir(work, n), run_as).await?;
        let inputs = partition_dir(work, n).join("inputs");
        make_dir(&inputs, run_as).await?;
        let mut names = Vec::with_capacity(chunk.len());
        for file in *chunk {
            let name = file
                .file_name()
                .ok_or_else(|| format!("input {} has no file name", file.display()))?;
            tokio::fs::rename(file, inputs.join(name))
                .await
                .map_err(|e| format!("partitioning the inputs: {e}"))?;
            names.push(name.to_string_lossy().into_owned());
        }
        let manifest = manifests.join(format!("partition-{n}.json"));
        let json = serde_json::to_vec(&names).map_err(|e| e.to_string())?;
        tokio::fs::write(&manifest, json)
            .await
            .map_err(|e| format!("writing a partition manifest: {e}"))?;
    }
    Ok(chunks.len())
}

/// Merges what the last of `commands` commands wrote in each of `partitions` partitions
/// into `<work>/collected/output_dir` (later partitions win on equal names); returns it.
pub(crate) async fn collect_partitions(
    work: &Path,
    partitions: usize,
    commands: usize,
) -> Result<PathBuf, String> {
    let collected = work.join("collected").join("output_dir");
    tokio::fs::create_dir_all(&collected)
        .await
        .map_err(|e| format!("collecting the partitions: {e}"))?;
    // A shell recipe has at least one command (`Recipe::new`).
    let last = commands.saturating_sub(1);
    for n in 0..partitions {
        let result = partition_dir(work, n)
            .join(format!("run-cmd-{last}"))
            .join("output_dir");
        copy_dir(&result, &collected)
            .await
            .map_err(|e| format!("collecting partition {n}: {e}"))?;
    }
    Ok(collected)
}

/// Makes `dir` (and its parents), owned by `run_as` when set.
pub(crate) async fn make_dir(dir: &Path, run_as: Option<(u32, u32)>) -> Result<(), String> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("creating a work directory: {e}"))?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))
            .map_err(|e| format!("handing a work directory to uid {uid}: {e}"))?;
    }
    Ok(())
}

/// Where the fetching steps find what they need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub fetcher: &'a Fetcher,
    pub claims: &'a Claims,
    /// Per file.
    pub max_bytes: u64,
}

/// Fetches the recipe's inputs into `dir` (named as `wget --content-disposition` would),
/// or copies a `pvc_mount` input's files there, owned by `run_as` when set, logging each.
/// Returns the files, in input order.
pub(crate) async fn fetch_inputs(
    sources: Sources<'_>,
    recipe: &Recipe,
    dir: &Path,
    run_as: Option<(u32, u32)>,
    log: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for param in &recipe.meta.input.params {
        let fetched = match param {
            InputParam::Url(url) => {
                let url = &url.value;
                append(log, &format!("fetch: {url}\n")).await;
                let path = sources
                    .fetcher
                    .download(url, dir, sources.max_bytes)
                    .await
                    .map_err(|e| format!("fetching {url}: {e}"))?;
                vec![path]
            }
            InputParam::PvcMount(pvc) => {
                let base = sources.claims.dir(&pvc.claim_name).ok_or_else(|| {
                    format!("pvc_mount claim {:?} is not allowed", pvc.claim_name)
                })?;
                append(
                    log,
                    &format!("stage: {} glob {}\n", shown_path(pvc), pvc.glob),
                )
                .await;
                let (pvc, dir, max) = (pvc.clone(), dir.to_owned(), sources.max_bytes);
                tokio::task::spawn_blocking(move || stage_pvc(&pvc, &base, &dir, max))
                    .await
                    .map_err(|e| e.to_string())??
            }
            InputParam::Dataone(_) => {
                return Err("DataONE inputs must be resolved to URLs first".to_owned());
            }
        };
        for path in fetched {
            if let Some((uid, gid)) = run_as {
                let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
            }
            files.push(path);
        }
    }
    Ok(files)
}

/// A `pvc_mount` input's directory as a recipe sees it on Argo (`/mnt/data/<claim>/<path>`).
pub(crate) fn shown_path(pvc: &PvcMountInput) -> String {
    let path = pvc.relative_path();
    if path.is_empty() {
        format!("/mnt/data/{}", pvc.claim_name)
    } else {
        format!("/mnt/data/{}/{path}", pvc.claim_name)
    }
}

/// Copies the regular files under `pvc.path` of the claim at `claim_dir` whose path ends
/// in a match of `pvc.glob` (Python's `rglob`: at any depth; symlinks are not followed)
/// into `dir`, by base name, in path order; refuses an input path outside the claim or
/// not a directory, no match, two files of one name, a file over `max` bytes. Returns
/// the copies.
fn stage_pvc(
    pvc: &PvcMountInput,
    claim_dir: &Path,
    dir: &Path,
    max: u64,
) -> Result<Vec<PathBuf>, String> {
    let shown = shown_path(pvc);
    let not_dir = || format!("PVC input path is not a directory: {shown}");
    let claim = claim_dir.canonicalize().map_err(|_| not_dir())?;
    let base = claim_dir
        .join(pvc.relative_path())
        .canonicalize()
        .map_err(|_| not_dir())?;
    if !base.starts_with(&claim) || !base.is_dir() {
        return Err(not_dir());
    }
    let pattern: Vec<&str> = pvc.glob.split('/').filter(|c| !c.is_empty()).collect();
    let mut matches = Vec::new();
    let mut stack = vec![(base.clone(), Vec::<String>::new())];
    while let Some((at, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&at).map_err(|e| format!("listing {shown}: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("listing {shown}: {e}"))?;
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            let mut path = rel.clone();
            path.push(entry.file_name().to_string_lossy().into_owned());
            if kind.is_dir() {
                stack.push((entry.path(), path));
            } else if kind.is_file() && tail_matches(&pattern, &path) {
                matches.push((path.join("/"), entry.path()));
            }
        }
    }
    if matches.is_empty() {
        return Err(format!(
            "No files found for PVC input path={shown} glob={}",
            pvc.glob
        ));
    }
    matches.sort();
    let mut seen: std::collections::HashMap<std::ffi::OsString, String> =
        std::collections::HashMap::new();
    let mut copies = Vec::with_capacity(matches.len());
    for (rel, source) in matches {
        let name = source.file_name().unwrap_or_default().to_owned();
        if let Some(first) = seen.insert(name.clone(), rel.clone()) {
            return Err(format!(
                "PVC input basename collision for {}: {first} and {rel}",
                name.to_string_lossy()
            ));
        }
        let size = std::fs::symlink_metadata(&source)
            .map_err(|e| format!("reading {rel}: {e}"))?
            .len();
        if size > max {
            return Err(format!("{rel} is larger than {max} bytes"));
        }
        let target = dir.join(&name);
        std::fs::copy(&source, &target).map_err(|e| format!("copying {rel}: {e}"))?;
        copies.push(target);
    }
    Ok(copies)
}

/// Whether the last components of `path` match `pattern`'s components (`fnmatch` each).
fn tail_matches(pattern: &[&str], path: &[String]) -> bool {
    pattern.len() <= path.len()
        && pattern
            .iter()
            .zip(&path[path.len() - pattern.len()..])
            .all(|(p, name)| fnmatch(p.as_bytes(), name.as_bytes()))
}

/// Shell-style matching of one name: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]`.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| fnmatch(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && fnmatch(rest, &name[1..]),
        Some((b'[', rest)) => match (class_matches(rest, name.first().copied()), name.len()) {
            (Some((true, after)), n) if n > 0 => fnmatch(after, &name[1..]),
            (Some(_), _) => false,
            // An unclosed `[` is a literal.
            (None, _) => name.first() == Some(&b'[') && fnmatch(rest, &name[1..]),
        },
        Some((c, rest)) => name.first() == Some(c) && fnmatch(rest, &name[1..]),
    }
}

/// A `[...]` class after its `[`: whether `c` is in it and the pattern after its `]`;
/// `None` when it is not closed.
fn class_matches(class: &[u8], c: Option<u8>) -> Option<(bool, &[u8])> {
    let (negated, body) = match class.first() {
        Some(b'!') => (true, &class[1..]),
        _ => (false, class),
    };
    // A `]` first is a member.
    let end = body.iter().skip(1).position(|b| *b == b']')? + 1;
    let (members, after) = (&body[..end], &body[end + 1..]);
    let Some(c) = c else {
        return Some((false, after));
    };
    let mut hit = false;
    let mut i = 0;
    while i < members.len() {
        if i + 2 < members.len() && members[i + 1] == b'-' {
            hit |= (members[i]..=members[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= members[i] == c;
            i += 1;
        }
    }
    Some((hit != negated, after))
}

/// Where a `pvc` output of recipe `id` is published.
pub(crate) fn published_dir(volume_root: &Path, id: &str) -> std::path::PathBuf {
    volume_root.join(id)
}

/// Whether recipe `id`'s `pvc` output is published (the publication check).
pub(crate) async fn is_published(volume_root: &Path, recipe: &Recipe) -> bool {
    *recipe.output() == Output::Pvc
        && tokio::fs::metadata(published_dir(volume_root, &recipe.id))
            .await
            .is_ok_and(|m| m.is_dir())
}

/// Removes recipe `id`'s published `pvc` output (`overwrite`).
pub(crate) async fn remove_published(volume_root: &Path, recipe: &Recipe) -> std::io::Result<()> {
    match tokio::fs::remove_dir_all(published_dir(volume_root, &recipe.id)).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Publishes `result` (the last step's `output_dir`) of run `name` of recipe `id`: copied
/// to `<volume_root>/<id>/` for `pvc`, zipped to `<work>/<id>.zip` and stored as
/// `<name>/<id>.zip` for `temporary`.
pub(crate) async fn publish(
    output: &Output,
    id: &str,
    name: &str,
    result: &Path,
    work: &Path,
    volume_root: &Path,
    objects: &dyn ObjectStore,
) -> Result<RunOutput, String> {
    match output {
        Output::Pvc => {
            copy_dir(result, &published_dir(volume_root, id))
                .await
                .map_err(|e| format!("publishing to the volume: {e}"))?;
            Ok(RunOutput::Pvc {
                path: id.to_owned(),
            })
        }
        Output::Temporary => {
            let zip_path = work.join(format!("{id}.zip"));
            let (from, to) = (result.to_owned(), zip_path.clone());
            tokio::task::spawn_blocking(move || zip_dir(&from, &to))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("zipping the output: {e}"))?;
            let key = format!("{name}/{id}.zip");
            upload(objects, &zip_path, &key)
                .await
                .map_err(|e| format!("storing the output: {e}"))?;
            Ok(RunOutput::Object { key })
        }
        Output::Dataone(_) => Err("DataONE outputs are not implemented".to_owned()),
    }
}

async fn upload(objects: &dyn ObjectStore, path: &Path, key: &str) -> Result<(), String> {
    let key = ObjectKey::parse(key.to_owned()).map_err(|e| e.to_string())?;
    let length = tokio::fs::metadata(path)
        .await
        .map_err(|e| e.to_string())?
        .len();
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| e.to_string())?;
    let body = futures::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(tessera_kit::objects::Error::backend(e)), file)),
        }
    })
    .boxed();
    objects
        .put(
            &key,
            body,
            PutRequest::new(length).content_type("application/zip"),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The command with the containers' `/input_dir` and `/output_dir` (as whole path
/// components) pointing at this step's directories, in one pass.
pub(crate) fn replace_dirs(command: &str, input: &Path, output: &Path) -> String {
    let (input, output) = (input.display().to_string(), output.display().to_string());
    let mut out = String::with_capacity(command.len() + input.len());
    let mut rest = command;
    while let Some(at) = rest.find('/') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let hit = [("/input_dir", &input), ("/output_dir", &output)]
            .into_iter()
            .find(|(token, _)| {
                tail.starts_with(token)
                    && !tail[token.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !out.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            });
        match hit {
            Some((token, path)) => {
                out.push_str(path);
                rest = &tail[token.len()..];
            }
            None => {
                out.push('/');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) async fn append(log: &Path, line: &str) {
    if let Ok(mut file) = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .await
    {
        let _ = file.write_all(line.as_bytes()).await;
    }
}

/// Copies the contents of `from` into `to` (`rsync /input_dir/* /output_dir/`).
pub(crate) async fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let (from, to) = (from.to_owned(), to.to_owned());
    tokio::task::spawn_blocking(move || copy_dir_blocking(&from, &to))
        .await
        .map_err(std::io::Error::other)?
}

fn copy_dir_blocking(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir_blocking(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `zip -r <to> ./*` run in `from`: entries relative to it, symlinks skipped.
pub(crate) fn zip_dir(from: &Path, to: &Path) -> zip::result::ZipResult<()> {
    let file = std::fs::File::create(to)?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut stack = vec![from.to_owned()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(from)
                .map_err(|e| std::io::Error::other(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                zip.add_directory(format!("{rel}/"), options)?;
                stack.push(path);
            } else if kind.is_file() {
                zip.start_file(rel, options)?;
                let mut src = std::fs::File::open(&path)?;
                std::io::copy(&mut src, &mut zip)?;
            }
        }
    }
    zip.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fnmatch_does() {
        for (pattern, name, expected) in [
            ("*", "a.tif", true),
            ("*.tif", "a.tif", true),
            ("*.tif", "a.tiff", false),
            ("tile_??.tif", "tile_01.tif", true),
            ("tile_??.tif", "tile_1.tif", false),
            ("[ab]*", "b1", true),
            ("[!ab]*", "b1", false),
            ("[a-c]x", "cx", true),
            ("[a-c]x", "dx", false),
            ("[]]", "]", true),
            ("a[", "a[", true),
            ("", "", true),
        ] {
            assert_eq!(
                fnmatch(pattern.as_bytes(), name.as_bytes()),
                expected,
                "{pattern} ~ {name}"
            );
        }
        let path = |p: &str| p.split('/').map(str::to_owned).collect::<Vec<_>>();
        assert!(tail_matches(&["*.tif"], &path("v3/deep/a.tif")));
        assert!(tail_matches(&["deep", "*.tif"], &path("v3/deep/a.tif")));
        assert!(!tail_matches(&["v2", "*.tif"], &path("v3/deep/a.tif")));
        assert!(!tail_matches(&["x", "y", "z", "*"], &path("a/b")));
    }

    #[test]
    fn pvc_inputs_are_copied_from_inside_their_claim_only() {
        let claim = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tiles = claim.path().join("tiles/v3");
        std::fs::create_dir_all(tiles.join("deep")).unwrap();
        std::fs::write(tiles.join("a.tif"), "a").unwrap();
        std::fs::write(tiles.join("deep/b.tif"), "b").unwrap();
        std::fs::write(tiles.join("notes.txt"), "n").unwrap();
        std::fs::write(outside.path().join("secret.tif"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.tif"), tiles.join("c.tif")).unwrap();
        std::os::unix::fs::symlink(outside.path(), claim.path().join("escape")).unwrap();
        let pvc = |path: &str, glob: &str| PvcMountInput {
            claim_name: "dem".into(),
            path: path.into(),
            glob: glob.into(),
        };
        let copies = stage_pvc(&pvc("/tiles/v3/", "*.tif"), claim.path(), dir.path(), 10).unwrap();
        let names: Vec<_> = copies
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["a.tif", "b.tif"], "symlinks are not followed");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.tif")).unwrap(),
            "b"
        );

        let err = stage_pvc(&pvc("escape", "*"), claim.path(), dir.path(), 10).unwrap_err();
        assert_eq!(
            err,
            "PVC input path is not a directory: /mnt/data/dem/escape"
        );
        let err = stage_pvc(&pvc("tiles/v3/a.tif", "*"), claim.path(), dir.path(), 10).unwrap_err();
        assert!(
            err.starts_with("PVC input path is not a directory"),
            "{err}"
        );
        let err = stage_pvc(&pvc("tiles", "*.png"), claim.path(), dir.path(), 10).unwrap_err();
        assert_eq!(
            err,
            "No files found for PVC input path=/mnt/data/dem/tiles glob=*.png"
        );
        std::fs::write(claim.path().join("tiles/a.tif"), "other").unwrap();
        let err = stage_pvc(&pvc("tiles", "*.tif"), claim.path(), dir.path(), 10).unwrap_err();
        assert_eq!(
            err,
            "PVC input basename collision for a.tif: a.tif and v3/a.tif"
        );
        let err = stage_pvc(&pvc("tiles/v3", "*.txt"), claim.path(), dir.path(), 0).unwrap_err();
        assert_eq!(err, "notes.txt is larger than 0 bytes");
    }

    #[test]
    fn container_directories_are_replaced_once_and_whole() {
        let input = Path::new("/w/fetch/output_dir");
        let output = Path::new("/w/step-1/output_dir");
        assert_eq!(
            replace_dirs(
                "cp /input_dir/a.csv /output_dir/ && ls /input_dir",
                input,
                output
            ),
            "cp /w/fetch/output_dir/a.csv /w/step-1/output_dir/ && ls /w/fetch/output_dir"
        );
        assert_eq!(
            replace_dirs(
                "echo /input_dirx a/input_dir /tmp/output_dir",
                input,
                output
            ),
            "echo /input_dirx a/input_dir /tmp/output_dir"
        );
    }
}

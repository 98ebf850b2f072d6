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
use tessera_recipes::{Output, Recipe, RunOutput};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fetch::Fetcher;

/// Refuses what an engine running shell steps outside containers cannot run: a
/// visualization workflow, inputs other than URLs. `engine` names it in the message.
pub(crate) fn check_runnable(recipe: &Recipe, engine: &str) -> Result<(), EngineError> {
    if !recipe.is_shell() {
        return Err(EngineError::Unsupported(format!(
            "the {engine} runs shell workflows only"
        )));
    }
    if recipe.urls().len() != recipe.meta.input.params.len() {
        return Err(EngineError::Unsupported(format!(
            "the {engine} fetches url inputs only"
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
    let last = commands.saturating_sub(1);
    for n in 0..partitions {
        let result = if commands == 0 {
            partition_dir(work, n).join("inputs")
        } else {
            partition_dir(work, n)
                .join(format!("run-cmd-{last}"))
                .join("output_dir")
        };
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

/// Fetches the recipe's inputs into `dir` (named as `wget --content-disposition` would),
/// owned by `run_as` when set, logging each.
pub(crate) async fn fetch_inputs(
    fetcher: &Fetcher,
    recipe: &Recipe,
    dir: &Path,
    max_bytes: u64,
    run_as: Option<(u32, u32)>,
    log: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for url in recipe.urls() {
        append(log, &format!("fetch: {url}\n")).await;
        let path = fetcher
            .download(url, dir, max_bytes)
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        if let Some((uid, gid)) = run_as {
            let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
        }
        files.push(path);
    }
    Ok(files)
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

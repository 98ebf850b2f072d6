//! The Argo Workflows provider over the Argo Server REST API (`/api/v1/workflows/{ns}`),
//! with the documents of §B4 and §B10.3 (template and step names, generateName, labels,
//! TTLs, artifact GC, PVC mounts; no retryStrategy in v0.3.0) and §B10.6's call order for
//! the publication check. No `Authorization` header unless a token is configured.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tessera_recipes::engine::EngineError;
use tessera_recipes::{EngineStatus, Output, Phase, Recipe, RunOutput, WorkflowEngine};

use super::steps::quoted;

/// What the documents depend on besides the recipe.
#[derive(Debug, Clone)]
pub struct ArgoSettings {
    /// `ARGO_SERVICE_ACCOUNT_NAME`.
    pub service_account: String,
    /// `OGDC_RUNNER_IMAGE_TAG`.
    pub image_tag: String,
    /// `ENVIRONMENT`: `local` uses the local image, `dev` always pulls.
    pub environment: String,
    /// The workflow volume's claim.
    pub pvc_name: String,
    /// `OGDC_MAX_PARALLEL_LIMIT`: a parallel workflow's `parallelism`.
    pub max_parallel: usize,
}

/// Where parallel runs keep their partitions on the workflow volume (`/mnt/workflow/`).
pub const RUNS_DIR: &str = "/mnt/workflow/.ogdc-runs";

/// The label that makes Argo archive a workflow.
pub const ARCHIVE_LABEL: &str = "ogdc/persist-workflow-in-archive";

impl ArgoSettings {
    fn image(&self) -> String {
        if self.environment == "local" {
            "ogdc-runner".to_owned()
        } else {
            format!("ghcr.io/qgreenland-net/ogdc-runner:{}", self.image_tag)
        }
    }

    fn pull_policy(&self) -> &'static str {
        if self.environment == "dev" {
            "Always"
        } else {
            "IfNotPresent"
        }
    }

    fn container(&self, script: String) -> Value {
        json!({
            "image": self.image(),
            "imagePullPolicy": self.pull_policy(),
            "command": ["sh", "-c"],
            "args": [script],
        })
    }

    fn workflow(
        &self,
        prefix: &str,
        archive: bool,
        ttl: u64,
        entrypoint: &str,
        templates: Vec<Value>,
    ) -> Value {
        json!({
            "workflow": {
                "metadata": {
                    "generateName": prefix,
                    "labels": { ARCHIVE_LABEL: if archive { "true" } else { "false" } },
                },
                "spec": {
                    "serviceAccountName": self.service_account,
                    "entrypoint": entrypoint,
                    "ttlStrategy": { "secondsAfterSuccess": ttl },
                    "artifactGC": { "strategy": "OnWorkflowDeletion" },
                    "volumes": [{
                        "name": "workflow-volume",
                        "persistentVolumeClaim": { "claimName": self.pvc_name },
                    }],
                    "templates": templates,
                }
            }
        })
    }

    /// The sequential shell workflow of `recipe` (POST body).
    pub fn shell_workflow(&self, recipe: &Recipe) -> Value {
        let id = &recipe.id;
        let fetch = format!("{id}-fetch-template-");
        let (volumes, mounts) = self.input_mounts(recipe);
        let script = if mounts.is_empty() {
            let wgets: Vec<String> = recipe
                .urls()
                .iter()
                .map(|url| format!("wget --content-disposition -P /output_dir/ {url}"))
                .collect();
            format!("mkdir -p /output_dir/ && {}", wgets.join(" && "))
        } else {
            stage_pvc_script(recipe)
        };
        let mut fetch_template = json!({ "name": fetch, "container": self.container(script) });
        if !mounts.is_empty() {
            fetch_template["container"]["volumeMounts"] = Value::Array(mounts);
        }
        fetch_template["outputs"] =
            json!({ "artifacts": [{ "name": "output-dir", "path": "/output_dir/" }] });
        let mut templates = vec![fetch_template];
        let mut steps = vec![json!([{ "name": fetch, "template": fetch }])];
        let mut previous = fetch.clone();
        for (i, command) in recipe.commands.iter().enumerate() {
            let (step, template) = (format!("step-{i}"), format!("run-cmd-{i}"));
            let mut t = json!({ "name": template, "container": self.container(format!("mkdir -p /output_dir/ && {command}")) });
            t["inputs"] = json!({ "artifacts": [{ "name": "input-dir", "path": "/input_dir/" }] });
            t["outputs"] =
                json!({ "artifacts": [{ "name": "output-dir", "path": "/output_dir/" }] });
            templates.push(t);
            steps.push(json!([{
                "name": step,
                "template": template,
                "arguments": { "artifacts": [{ "name": "input-dir", "from": format!("{{{{steps.{previous}.outputs.artifacts.output-dir}}}}") }] },
            }]));
            previous = step;
        }
        let temporary = *recipe.output() == Output::Temporary;
        let mut publish = if temporary {
            let mut p = json!({ "name": "publish-data-", "container": self.container(format!("mkdir -p /output_dir/ && cd /input_dir/ && zip -r /output_dir/{id}.zip ./*")) });
            p["outputs"] = json!({ "artifacts": [{ "name": "published_zip", "path": format!("/output_dir/{id}.zip"), "archive": { "none": {} } }] });
            p
        } else {
            let mut p = json!({ "name": "publish-data-", "container": self.container("rsync --progress /input_dir/* /output_dir/".into()) });
            p["container"]["volumeMounts"] =
                json!([{ "name": "workflow-volume", "mountPath": "/output_dir/", "subPath": id }]);
            p
        };
        publish["inputs"] =
            json!({ "artifacts": [{ "name": "input-dir", "path": "/input_dir/" }] });
        templates.push(publish);
        steps.push(json!([{
            "name": "publish-data",
            "template": "publish-data-",
            "arguments": { "artifacts": [{ "name": "input-dir", "from": format!("{{{{steps.{previous}.outputs.artifacts.output-dir}}}}") }] },
        }]));
        templates.insert(0, json!({ "name": "main", "steps": steps }));
        self.data_workflow(recipe, templates, volumes)
    }

    /// A recipe's data workflow (archived; its TTL by output) of `templates`, entry `main`,
    /// with `volumes` besides the workflow volume.
    fn data_workflow(&self, recipe: &Recipe, templates: Vec<Value>, volumes: Vec<Value>) -> Value {
        let ttl = if *recipe.output() == Output::Temporary {
            604_800
        } else {
            86_400
        };
        let mut doc = self.workflow(
            &tessera_recipes::runs::workflow_prefix(&recipe.id, "shell"),
            true,
            ttl,
            "main",
            templates,
        );
        if let Some(all) = doc["workflow"]["spec"]["volumes"].as_array_mut() {
            all.extend(volumes);
        }
        doc
    }

    /// The volumes and read-only mounts (`/mnt/data/<claim>`) of `recipe`'s `pvc_mount`
    /// inputs; the workflow volume's own claim is mounted from `workflow-volume`.
    fn input_mounts(&self, recipe: &Recipe) -> (Vec<Value>, Vec<Value>) {
        let mut claims: Vec<&str> = recipe
            .pvc_inputs()
            .iter()
            .map(|p| p.claim_name.as_str())
            .collect();
        claims.sort_unstable();
        claims.dedup();
        let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
        for (i, claim) in claims.into_iter().enumerate() {
            let volume = if claim == self.pvc_name {
                "workflow-volume".to_owned()
            } else {
                let name = format!("input-pvc-{i}");
                volumes.push(json!({
                    "name": name,
                    "persistentVolumeClaim": { "claimName": claim, "readOnly": true },
                }));
                name
            };
            mounts.push(json!({ "name": volume, "mountPath": format!("/mnt/data/{claim}"), "readOnly": true }));
        }
        (volumes, mounts)
    }

    /// The parallel shell workflow of `recipe` (POST body): a DAG with `parallelism`, the
    /// inputs fetched per partition onto the workflow volume with each partition's
    /// manifest, then each command fanned out over the partitions (`withParam`), once per
    /// file with `$INPUT_FILE`/`$OUTPUT_FILE`, then `publish-data` merging the last
    /// command's outputs; an exit handler removes the partitions' data, keeping the
    /// manifests. Everything lives in `.ogdc-runs/<workflow name>/` on the volume, so a
    /// failed run never looks published and two runs of one recipe do not meet.
    pub fn parallel_workflow(&self, recipe: &Recipe) -> Value {
        let id = &recipe.id;
        let work = format!("{RUNS_DIR}/{{{{workflow.name}}}}");
        let mount = json!([{ "name": "workflow-volume", "mountPath": "/mnt/workflow/" }]);
        let (volumes, input_mounts) = self.input_mounts(recipe);
        let mut cmd_mounts = mount.clone();
        if let Some(all) = cmd_mounts.as_array_mut() {
            all.extend(input_mounts.iter().cloned());
        }
        let (fetch_name, script, fan_out) = if input_mounts.is_empty() {
            let urls = recipe.urls();
            let chunks: Vec<&[&str]> = urls.chunks(recipe.partition_size()).collect();
            let mut fetch = vec![format!("mkdir -p {work}/partition-manifests/inputs")];
            for (n, chunk) in chunks.iter().enumerate() {
                let inputs = format!("{work}/partition-{n}/inputs/");
                fetch.push(format!("mkdir -p {inputs}"));
                fetch.extend(
                    chunk
                        .iter()
                        .map(|url| format!("wget --content-disposition -P {inputs} {url}")),
                );
                let manifest = serde_json::to_string(chunk).unwrap_or_default();
                fetch.push(format!(
                    "printf '%s' {} > {work}/partition-manifests/inputs/partition-{n}.json",
                    quoted(&manifest)
                ));
            }
            let partitions: Vec<Value> = (0..chunks.len())
                .map(|n| json!({ "partition_id": n }))
                .collect();
            (
                format!("{id}-fetch-template-"),
                fetch.join(" && "),
                Value::Array(partitions).to_string(),
            )
        } else {
            // The claims' files are only known in the cluster: listed at run time.
            (
                "list-pvc-files".to_owned(),
                list_pvc_script(recipe, &work),
                "{{tasks.fetch.outputs.result}}".to_owned(),
            )
        };
        let mut fetch_template = json!({ "name": fetch_name, "container": self.container(script) });
        fetch_template["container"]["volumeMounts"] = cmd_mounts.clone();
        let mut templates = vec![fetch_template];
        let mut tasks = vec![json!({ "name": "fetch", "template": fetch_name })];
        let mut previous = "fetch".to_owned();
        let part = format!("{work}/partition-{{{{inputs.parameters.partition-id}}}}");
        let mut input = format!("{part}/inputs");
        for (i, command) in recipe.commands.iter().enumerate() {
            let name = format!("run-cmd-{i}");
            let output = format!("{part}/run-cmd-{i}/output_dir");
            let script = format!(
                "mkdir -p {}\n{}",
                super::steps::quoted(&output),
                super::steps::per_file_script(command, &input, &output)
            );
            let mut t = json!({ "name": name, "container": self.container(script) });
            t["inputs"] = json!({ "parameters": [{ "name": "partition-id" }] });
            t["container"]["volumeMounts"] = cmd_mounts.clone();
            templates.push(t);
            tasks.push(json!({
                "name": name,
                "template": name,
                "dependencies": [previous],
                "withParam": fan_out,
                "arguments": { "parameters": [{ "name": "partition-id", "value": "{{item.partition_id}}" }] },
            }));
            previous = name;
            input = output;
        }
        let last = recipe.commands.len().saturating_sub(1);
        let results = format!("{work}/partition-*/run-cmd-{last}/output_dir/.");
        let temporary = *recipe.output() == Output::Temporary;
        let publish = if temporary {
            let mut p = json!({ "name": "publish-data-", "container": self.container(format!("mkdir -p /tmp/collected/ /output_dir/ && cp -R {results} /tmp/collected/ && cd /tmp/collected/ && zip -r /output_dir/{id}.zip ./*")) });
            p["outputs"] = json!({ "artifacts": [{ "name": "published_zip", "path": format!("/output_dir/{id}.zip"), "archive": { "none": {} } }] });
            p["container"]["volumeMounts"] = mount.clone();
            p
        } else {
            let mut p = json!({ "name": "publish-data-", "container": self.container(format!("mkdir -p /output_dir/ && cp -R {results} /output_dir/")) });
            p["container"]["volumeMounts"] = json!([
                { "name": "workflow-volume", "mountPath": "/mnt/workflow/" },
                { "name": "workflow-volume", "mountPath": "/output_dir/", "subPath": id },
            ]);
            p
        };
        templates.push(publish);
        tasks.push(json!({ "name": "publish-data", "template": "publish-data-", "dependencies": [previous] }));
        let mut cleanup = json!({ "name": "cleanup", "container": self.container(format!("rm -rf {work}/partition-*")) });
        cleanup["container"]["volumeMounts"] = mount;
        templates.push(cleanup);
        templates.insert(0, json!({ "name": "main", "dag": { "tasks": tasks } }));
        let mut doc = self.data_workflow(recipe, templates, volumes);
        let spec = &mut doc["workflow"]["spec"];
        spec["parallelism"] = json!(recipe.max_parallelism(self.max_parallel));
        spec["onExit"] = json!("cleanup");
        doc
    }

    /// The removal of a recipe's published data (`overwrite`).
    pub fn remove_existing_workflow(&self, recipe: &Recipe) -> Value {
        let id = &recipe.id;
        let mut t = json!({
            "name": "remove-existing-data",
            "container": self.container(format!("rm -rf /mnt/{id}")),
        });
        t["container"]["volumeMounts"] =
            json!([{ "name": "workflow-volume", "mountPath": "/mnt/" }]);
        self.workflow(
            &tessera_recipes::runs::workflow_prefix(id, "remove-existing-data"),
            false,
            86_400,
            "remove-existing-data",
            vec![t],
        )
    }

    /// The publication check of a `pvc` recipe: `yes`/`no` in output parameter
    /// `data-published` of template `check-already-published`.
    pub fn check_published_workflow(&self, recipe: &Recipe) -> Value {
        let id = &recipe.id;
        let mut t = json!({
            "name": "check-already-published",
            "container": self.container(format!("if test -d /mnt/{id}; then echo yes > /tmp/data-published; else echo no > /tmp/data-published; fi")),
            "outputs": { "parameters": [{ "name": "data-published", "valueFrom": { "path": "/tmp/data-published" } }] },
        });
        t["container"]["volumeMounts"] =
            json!([{ "name": "workflow-volume", "mountPath": "/mnt/" }]);
        self.workflow(
            &tessera_recipes::runs::workflow_prefix(id, "check-published"),
            false,
            86_400,
            "check-already-published",
            vec![t],
        )
    }
}

/// `find` arguments selecting the regular files under `dir` whose path ends in `glob`
/// (Python's `rglob`; `*` in a `/`-pattern may cross directories, unlike `rglob`).
fn find_files(dir: &str, glob: &str) -> String {
    let test = if glob.contains('/') {
        format!("-path {}", quoted(&format!("*/{glob}")))
    } else {
        format!("-name {}", quoted(glob))
    };
    format!("find {} -type f {test}", quoted(dir))
}

/// The checks of a `pvc_mount` input's directory and matches, as the original's staging
/// words them (on standard error).
fn pvc_checks(dir: &str, glob: &str) -> String {
    let not_dir = quoted(&format!("PVC input path is not a directory: {dir}"));
    let none = quoted(&format!(
        "No files found for PVC input path={dir} glob={glob}"
    ));
    format!(
        "test -d {d} || {{ echo {not_dir} >&2; exit 1; }}\n\
         [ -n \"$({find} -print | head -n 1)\" ] || {{ echo {none} >&2; exit 1; }}\n",
        d = quoted(dir),
        find = find_files(dir, glob),
    )
}

/// The sequential workflow's fetch step for `pvc_mount` inputs: their files copied into
/// `/output_dir/` by base name (a second file of one name fails the step).
fn stage_pvc_script(recipe: &Recipe) -> String {
    let mut script = "set -eu\nmkdir -p /output_dir/\n".to_owned();
    for pvc in recipe.pvc_inputs() {
        let dir = super::steps::shown_path(pvc);
        script.push_str(&pvc_checks(&dir, &pvc.glob));
        script.push_str(&format!(
            "{} -print | sort | while IFS= read -r f; do\n\
             b=\"${{f##*/}}\"\n\
             [ ! -e \"/output_dir/$b\" ] || {{ echo \"PVC input basename collision for $b\" >&2; exit 1; }}\n\
             cp \"$f\" \"/output_dir/$b\"\n\
             done\n",
            find_files(&dir, &pvc.glob)
        ));
    }
    script
}

/// The parallel workflow's `list-pvc-files` step: the `pvc_mount` inputs' files, in order,
/// linked into partitions of `partition_size` (`<work>/partition-<n>/inputs/`, the links
/// resolving where the commands mount the claims), each partition's list kept as
/// `partition-manifests/pvc-inputs/partition-<n>.json`; prints `[{"partition_id":n},…]`
/// (its `outputs.result`, the commands' `withParam`).
fn list_pvc_script(recipe: &Recipe, work: &str) -> String {
    let work_q = quoted(work);
    let mut script = format!(
        "set -eu\nW={work_q}\nM=\"$W/partition-manifests/pvc-inputs\"\nmkdir -p \"$M\"\n: > \"$W/files\"\n"
    );
    for pvc in recipe.pvc_inputs() {
        let dir = super::steps::shown_path(pvc);
        script.push_str(&pvc_checks(&dir, &pvc.glob));
        script.push_str(&format!(
            "{} -print | sort >> \"$W/files\"\n",
            find_files(&dir, &pvc.glob)
        ));
    }
    script.push_str(&format!(
        "i=0\n: > \"$W/names\"\n\
         while IFS= read -r f; do\n\
         p=$((i / {size})); b=\"${{f##*/}}\"\n\
         if grep -Fxq -- \"$b\" \"$W/names\"; then echo \"PVC input basename collision for $b\" >&2; exit 1; fi\n\
         printf '%s\\n' \"$b\" >> \"$W/names\"\n\
         mkdir -p \"$W/partition-$p/inputs\"\n\
         ln -s \"$f\" \"$W/partition-$p/inputs/$b\"\n\
         printf '%s\\n' \"$f\" >> \"$M/partition-$p.list\"\n\
         i=$((i + 1))\n\
         done < \"$W/files\"\n\
         n=$(( (i + {size} - 1) / {size} ))\n\
         k=0\n\
         while [ $k -lt $n ]; do\n\
         sed 's/\\\\/\\\\\\\\/g; s/\"/\\\\\"/g; s/.*/\"&\"/' \"$M/partition-$k.list\" | paste -sd, - | sed 's/.*/[&]/' > \"$M/partition-$k.json\"\n\
         rm \"$M/partition-$k.list\"\n\
         k=$((k + 1))\n\
         done\n\
         rm \"$W/files\" \"$W/names\"\n\
         k=0; printf '['\n\
         while [ $k -lt $n ]; do [ $k -eq 0 ] || printf ','; printf '{{\"partition_id\":%d}}' $k; k=$((k + 1)); done\n\
         printf ']\\n'\n",
        size = recipe.partition_size(),
    ));
    script
}

/// The provider.
#[derive(Debug, Clone)]
pub struct ArgoEngine {
    settings: ArgoSettings,
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    poll: Duration,
    max_polls: u32,
}

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::Failed(e.to_string())
}

impl ArgoEngine {
    /// A provider for the Argo Server at `url`, namespace `namespace`; `token` for an
    /// `Authorization: Bearer` header (none by default); helpers are polled every `poll`.
    pub fn new(
        settings: ArgoSettings,
        url: &str,
        namespace: &str,
        token: Option<String>,
        poll: Duration,
    ) -> Result<Self, EngineError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(failed)?;
        Ok(Self {
            settings,
            client,
            base: format!("{}/api/v1/workflows/{namespace}", url.trim_end_matches('/')),
            token: token.filter(|t| !t.is_empty()),
            poll,
            max_polls: 720,
        })
    }

    fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        name: &str,
    ) -> Result<Value, EngineError> {
        let response = request
            .send()
            .await
            .map_err(|e| failed(format!("argo server: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(EngineError::Unknown(name.to_owned()));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(failed(format!("argo server answered {status}: {body}")));
        }
        let text = response.text().await.map_err(failed)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| failed(format!("argo server: {e}")))
    }

    async fn submit(&self, doc: &Value) -> Result<String, EngineError> {
        let created = self
            .send(
                self.request(reqwest::Method::POST, self.base.clone())
                    .json(doc),
                "",
            )
            .await?;
        created["metadata"]["name"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| failed("argo server returned no workflow name"))
    }

    async fn get(&self, name: &str) -> Result<Value, EngineError> {
        self.send(
            self.request(reqwest::Method::GET, format!("{}/{name}", self.base)),
            name,
        )
        .await
    }

    /// Polls until `Succeeded` (GET at once, then every `poll`); `Failed` and `Error` end
    /// the wait with an error (the original waited forever on `Error`).
    async fn wait(&self, name: &str) -> Result<(), EngineError> {
        for i in 0..self.max_polls {
            if i > 0 {
                tokio::time::sleep(self.poll).await;
            }
            let wf = self.get(name).await?;
            match wf["status"]["phase"].as_str() {
                Some("Succeeded") => return Ok(()),
                Some(phase @ ("Failed" | "Error")) => {
                    return Err(failed(format!("workflow {name} ended {phase}")));
                }
                _ => {}
            }
        }
        Err(failed(format!("workflow {name} did not finish")))
    }

    async fn delete(&self, name: &str) -> Result<(), EngineError> {
        match self
            .send(
                self.request(reqwest::Method::DELETE, format!("{}/{name}", self.base)),
                name,
            )
            .await
        {
            Ok(_) | Err(EngineError::Unknown(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn nodes(wf: &Value) -> Vec<&Value> {
    wf["status"]["nodes"]
        .as_object()
        .map(|n| n.values().collect())
        .unwrap_or_default()
}

#[async_trait]
impl WorkflowEngine for ArgoEngine {
    fn name(&self) -> &'static str {
        "argo"
    }

    async fn published(&self, recipe: &Recipe) -> Result<bool, EngineError> {
        if *recipe.output() != Output::Pvc {
            return Ok(false);
        }
        let name = self
            .submit(&self.settings.check_published_workflow(recipe))
            .await?;
        self.wait(&name).await?;
        let wf = self.get(&name).await?;
        let answer = nodes(&wf)
            .into_iter()
            .filter(|n| n["templateName"] == "check-already-published")
            .flat_map(|n| {
                n["outputs"]["parameters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|p| p["name"] == "data-published")
            .and_then(|p| p["value"].as_str().map(|v| v.trim() == "yes"));
        self.delete(&name).await?;
        answer.ok_or_else(|| {
            failed(format!(
                "workflow {name} did not say whether data are published"
            ))
        })
    }

    async fn remove_published(&self, recipe: &Recipe) -> Result<(), EngineError> {
        let name = self
            .submit(&self.settings.remove_existing_workflow(recipe))
            .await?;
        self.wait(&name).await
    }

    async fn start(&self, _name: &str, recipe: &Recipe) -> Result<String, EngineError> {
        if !recipe.is_shell() {
            return Err(EngineError::Unsupported(
                "visualization workflows are not implemented".into(),
            ));
        }
        if !recipe.dataone_inputs().is_empty() {
            return Err(EngineError::Unsupported(
                "the Argo provider fetches url and pvc_mount inputs only".into(),
            ));
        }
        let doc = if recipe.is_parallel() {
            self.settings.parallel_workflow(recipe)
        } else {
            self.settings.shell_workflow(recipe)
        };
        let name = self.submit(&doc).await?;
        Ok(format!("{name} {}", recipe.id))
    }

    async fn status(&self, handle: &str) -> Result<EngineStatus, EngineError> {
        let (name, id) = handle.split_once(' ').unwrap_or((handle, ""));
        let wf = self.get(name).await?;
        let phase = match wf["status"]["phase"].as_str() {
            Some("Running") => Phase::Running,
            Some("Succeeded") => Phase::Succeeded,
            Some("Failed") => Phase::Failed,
            Some("Error") => Phase::Error,
            _ => Phase::Pending,
        };
        let output = (phase == Phase::Succeeded).then(|| {
            nodes(&wf)
                .into_iter()
                .flat_map(|n| {
                    n["outputs"]["artifacts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .find(|a| a["name"] == "published_zip")
                .and_then(|a| a["s3"]["key"].as_str().map(str::to_owned))
                .map(|key| RunOutput::Object { key })
                .unwrap_or_else(|| RunOutput::Pvc {
                    path: id.to_owned(),
                })
        });
        Ok(EngineStatus {
            phase,
            message: wf["status"]["message"].as_str().map(str::to_owned),
            output,
        })
    }

    async fn cancel(&self, handle: &str) -> Result<(), EngineError> {
        let name = handle.split(' ').next().unwrap_or(handle);
        match self
            .send(
                self.request(reqwest::Method::PUT, format!("{}/{name}/stop", self.base))
                    .json(&json!({})),
                name,
            )
            .await
        {
            Ok(_) | Err(EngineError::Unknown(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn logs(&self, handle: &str) -> Result<String, EngineError> {
        let name = handle.split(' ').next().unwrap_or(handle);
        let response = self
            .request(
                reqwest::Method::GET,
                format!("{}/{name}/log?logOptions.container=main", self.base),
            )
            .send()
            .await
            .map_err(failed)?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(EngineError::Unknown(name.to_owned()));
        }
        let text = response.text().await.map_err(failed)?;
        // One JSON object per line: {"result":{"content":…,"podName":…}}.
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["result"]["content"].as_str().map(|c| format!("{c}\n")))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recipe of `meta` whose `recipe.sh` is `sh`.
    fn parsed(meta: &str, sh: &str) -> Recipe {
        Recipe::parse(meta, |_| Ok(Some(sh.to_owned()))).unwrap()
    }

    fn recipe(output: &str) -> Recipe {
        parsed(
            &format!(
                "name: Seal Tags\nworkflow:\n  type: shell\ninput:\n  params:\n    - type: url\n      value: https://x.org/a.csv\noutput:\n  type: {output}\n"
            ),
            "cp /input_dir/a.csv /output_dir/\nwc -l /input_dir/a.csv > /output_dir/n\n",
        )
    }

    fn settings() -> ArgoSettings {
        ArgoSettings {
            service_account: "argo-workflow".into(),
            image_tag: "latest".into(),
            environment: "prod".into(),
            pvc_name: "cephfs-qgnet-ogdc-workflow-pvc".into(),
            max_parallel: 5,
        }
    }

    #[test]
    fn the_shell_workflow_matches_section_b4() {
        let doc = settings().shell_workflow(&recipe("temporary"));
        let wf = &doc["workflow"];
        assert_eq!(wf["metadata"]["generateName"], "seal-tags-shell-");
        assert_eq!(wf["metadata"]["labels"][ARCHIVE_LABEL], "true");
        let spec = &wf["spec"];
        assert_eq!(spec["serviceAccountName"], "argo-workflow");
        assert_eq!(spec["entrypoint"], "main");
        assert_eq!(spec["ttlStrategy"], json!({"secondsAfterSuccess": 604800}));
        assert_eq!(
            spec["artifactGC"],
            json!({"strategy": "OnWorkflowDeletion"})
        );
        assert!(spec.get("retryStrategy").is_none());
        let names: Vec<&str> = spec["templates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "main",
                "seal-tags-fetch-template-",
                "run-cmd-0",
                "run-cmd-1",
                "publish-data-"
            ]
        );
        let steps: Vec<&str> = spec["templates"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s[0]["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            steps,
            [
                "seal-tags-fetch-template-",
                "step-0",
                "step-1",
                "publish-data"
            ]
        );
        let fetch = &spec["templates"][1]["container"];
        assert_eq!(fetch["image"], "ghcr.io/qgreenland-net/ogdc-runner:latest");
        assert_eq!(fetch["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            fetch["args"][0],
            "mkdir -p /output_dir/ && wget --content-disposition -P /output_dir/ https://x.org/a.csv"
        );
        assert_eq!(
            spec["templates"][2]["container"]["args"][0],
            "mkdir -p /output_dir/ && cp /input_dir/a.csv /output_dir/"
        );
        assert_eq!(
            spec["templates"][0]["steps"][2][0]["arguments"]["artifacts"][0]["from"],
            "{{steps.step-0.outputs.artifacts.output-dir}}"
        );
        assert_eq!(
            spec["templates"][4]["outputs"]["artifacts"][0],
            json!({"name": "published_zip", "path": "/output_dir/seal-tags.zip", "archive": {"none": {}}})
        );

        let pvc = settings().shell_workflow(&recipe("pvc"));
        let spec = &pvc["workflow"]["spec"];
        assert_eq!(spec["ttlStrategy"]["secondsAfterSuccess"], 86400);
        assert_eq!(
            spec["templates"][4]["container"]["args"][0],
            "rsync --progress /input_dir/* /output_dir/"
        );
        assert_eq!(
            spec["templates"][4]["container"]["volumeMounts"][0]["subPath"],
            "seal-tags"
        );
        assert_eq!(
            spec["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "cephfs-qgnet-ogdc-workflow-pvc"
        );
    }

    fn parallel_recipe(output: &str) -> Recipe {
        parsed(
            &format!(
                "name: Seal Tags\nworkflow:\n  type: shell\n  parallel:\n    enabled: true\n    partition_size: 2\n    max_parallelism: 9\ninput:\n  params:\n    - type: url\n      value: https://x.org/a.txt\n    - type: url\n      value: https://x.org/b.txt\n    - type: url\n      value: https://x.org/c.txt\noutput:\n  type: {output}\n"
            ),
            "tr a-z A-Z < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\ncp \"$INPUT_FILE\" /output_dir/ && ls /input_dir > \"$OUTPUT_FILE.seen\" # note\n",
        )
    }

    #[test]
    fn a_parallel_recipe_is_a_dag_fanned_out_over_its_partitions() {
        let doc = settings().parallel_workflow(&parallel_recipe("pvc"));
        let wf = &doc["workflow"];
        assert_eq!(wf["metadata"]["generateName"], "seal-tags-shell-");
        assert_eq!(wf["metadata"]["labels"][ARCHIVE_LABEL], "true");
        let spec = &wf["spec"];
        assert_eq!(spec["parallelism"], 5, "max_parallelism under the limit");
        assert_eq!(spec["entrypoint"], "main");
        assert_eq!(spec["onExit"], "cleanup");
        let tasks = spec["templates"][0]["dag"]["tasks"].as_array().unwrap();
        let names: Vec<(&str, &str)> = tasks
            .iter()
            .map(|t| (t["name"].as_str().unwrap(), t["template"].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("fetch", "seal-tags-fetch-template-"),
                ("run-cmd-0", "run-cmd-0"),
                ("run-cmd-1", "run-cmd-1"),
                ("publish-data", "publish-data-")
            ]
        );
        assert_eq!(tasks[1]["dependencies"], json!(["fetch"]));
        assert_eq!(tasks[2]["dependencies"], json!(["run-cmd-0"]));
        assert_eq!(tasks[3]["dependencies"], json!(["run-cmd-1"]));
        assert_eq!(
            tasks[1]["withParam"],
            r#"[{"partition_id":0},{"partition_id":1}]"#
        );
        assert_eq!(
            tasks[2]["arguments"]["parameters"][0],
            json!({"name": "partition-id", "value": "{{item.partition_id}}"})
        );
        let fetch = spec["templates"][1]["container"]["args"][0]
            .as_str()
            .unwrap();
        assert!(
            fetch.contains(
                "wget --content-disposition -P /mnt/workflow/.ogdc-runs/{{workflow.name}}/partition-1/inputs/ https://x.org/c.txt"
            ),
            "{fetch}"
        );
        assert!(
            fetch.contains(
                r#"printf '%s' '["https://x.org/a.txt","https://x.org/b.txt"]' > /mnt/workflow/.ogdc-runs/{{workflow.name}}/partition-manifests/inputs/partition-0.json"#
            ),
            "{fetch}"
        );
        assert_eq!(
            spec["templates"][2]["inputs"]["parameters"][0]["name"],
            "partition-id"
        );
        let publish = &spec["templates"][4]["container"];
        assert_eq!(publish["volumeMounts"][1]["subPath"], "seal-tags");
    }

    /// Runs the DAG's containers' scripts here, in task order and per partition, with the
    /// workflow volume in a temporary directory and the inputs as the fetch would leave
    /// them: the partitions' files are processed one by one and merged at publication.
    #[test]
    fn the_parallel_workflow_scripts_process_each_file_of_each_partition() {
        let volume = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let doc = settings().parallel_workflow(&parallel_recipe("pvc"));
        let spec = &doc["workflow"]["spec"];
        let work = volume.path().join(".ogdc-runs/run-1");
        for (n, file) in [(0, "a.txt"), (0, "b.txt"), (1, "c.txt")] {
            let inputs = work.join(format!("partition-{n}/inputs"));
            std::fs::create_dir_all(&inputs).unwrap();
            std::fs::write(inputs.join(file), file.replace(".txt", "\n")).unwrap();
        }
        let run = |template: &Value, partition: Option<u32>| {
            let mut script = template["container"]["args"][0]
                .as_str()
                .unwrap()
                .replace("/mnt/workflow/", &format!("{}/", volume.path().display()))
                .replace("{{workflow.name}}", "run-1");
            match partition {
                Some(n) => {
                    script = script.replace("{{inputs.parameters.partition-id}}", &n.to_string());
                }
                None => {
                    script =
                        script.replace(" /output_dir/", &format!(" {}/", out.path().display()));
                }
            }
            let done = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .unwrap();
            assert!(done.status.success(), "{script}: {done:?}");
        };
        let templates = spec["templates"].as_array().unwrap();
        for template in &templates[2..4] {
            for n in 0..2 {
                run(template, Some(n));
            }
        }
        run(&templates[4], None);
        let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
        assert_eq!(read("a.txt"), "A\n");
        assert_eq!(read("c.txt"), "C\n");
        assert_eq!(read("b.txt.seen"), "a.txt\nb.txt\n");
        assert_eq!(read("c.txt.seen"), "c.txt\n");
        run(&templates[5], None);
        assert!(!work.join("partition-0").exists());
    }

    fn pvc_recipe(parallel: bool) -> Recipe {
        let parallel = if parallel {
            "  parallel:\n    enabled: true\n    partition_size: 2\n"
        } else {
            ""
        };
        parsed(
            &format!(
                "name: Dem\nworkflow:\n  type: shell\n{parallel}input:\n  params:\n    - type: pvc_mount\n      claim_name: arctic-dem\n      path: /tiles/v3/\n      glob: \"*.tif\"\n    - type: pvc_mount\n      claim_name: cephfs-qgnet-ogdc-workflow-pvc\n      path: extra\noutput:\n  type: pvc\n"
            ),
            "tr a-z A-Z < \"$INPUT_FILE\" > \"$OUTPUT_FILE\"\n",
        )
    }

    /// A claim root with `arctic-dem/tiles/v3/{a,b,deep/c}.tif` (and a `.txt`) and the
    /// workflow claim's `extra/d "q".txt`.
    fn claims() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let tiles = root.path().join("arctic-dem/tiles/v3");
        std::fs::create_dir_all(tiles.join("deep")).unwrap();
        for (file, text) in [
            ("a.tif", "a"),
            ("b.tif", "b"),
            ("deep/c.tif", "c"),
            ("x.txt", "x"),
        ] {
            std::fs::write(tiles.join(file), text).unwrap();
        }
        let extra = root.path().join("cephfs-qgnet-ogdc-workflow-pvc/extra");
        std::fs::create_dir_all(&extra).unwrap();
        std::fs::write(extra.join("d \"q\".txt"), "d").unwrap();
        root
    }

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap()
    }

    #[test]
    fn pvc_inputs_are_mounted_read_only_and_staged_by_the_fetch_step() {
        let doc = settings().shell_workflow(&pvc_recipe(false));
        let spec = &doc["workflow"]["spec"];
        assert_eq!(
            spec["volumes"][1],
            json!({"name": "input-pvc-0", "persistentVolumeClaim": {"claimName": "arctic-dem", "readOnly": true}})
        );
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 2);
        let fetch = &spec["templates"][1]["container"];
        assert_eq!(
            fetch["volumeMounts"],
            json!([
                {"name": "input-pvc-0", "mountPath": "/mnt/data/arctic-dem", "readOnly": true},
                {"name": "workflow-volume", "mountPath": "/mnt/data/cephfs-qgnet-ogdc-workflow-pvc", "readOnly": true},
            ])
        );
        let root = claims();
        let out = tempfile::tempdir().unwrap();
        let script = fetch["args"][0]
            .as_str()
            .unwrap()
            .replace("/mnt/data/", &format!("{}/", root.path().display()))
            .replace("/output_dir/", &format!("{}/", out.path().display()));
        let done = sh(&script);
        assert!(done.status.success(), "{script}\n{done:?}");
        let mut names: Vec<String> = std::fs::read_dir(out.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["a.tif", "b.tif", "c.tif", "d \"q\".txt"]);
        // No match, a missing directory: the step fails with the original's words.
        std::fs::remove_file(root.path().join("arctic-dem/tiles/v3/deep/c.tif")).unwrap();
        std::fs::remove_file(root.path().join("arctic-dem/tiles/v3/a.tif")).unwrap();
        std::fs::remove_file(root.path().join("arctic-dem/tiles/v3/b.tif")).unwrap();
        let done = sh(&script);
        assert!(
            String::from_utf8_lossy(&done.stderr).contains("No files found for PVC input path="),
            "{done:?}"
        );
    }

    #[test]
    fn parallel_pvc_inputs_are_listed_into_partitions_at_run_time() {
        let doc = settings().parallel_workflow(&pvc_recipe(true));
        let spec = &doc["workflow"]["spec"];
        let tasks = spec["templates"][0]["dag"]["tasks"].as_array().unwrap();
        assert_eq!(
            tasks[0],
            json!({"name": "fetch", "template": "list-pvc-files"})
        );
        assert_eq!(tasks[1]["withParam"], "{{tasks.fetch.outputs.result}}");
        let root = claims();
        let volume = tempfile::tempdir().unwrap();
        let local = |script: &str| {
            script
                .replace("/mnt/data/", &format!("{}/", root.path().display()))
                .replace("/mnt/workflow/", &format!("{}/", volume.path().display()))
                .replace("{{workflow.name}}", "run-1")
        };
        let list = local(
            spec["templates"][1]["container"]["args"][0]
                .as_str()
                .unwrap(),
        );
        let done = sh(&list);
        assert!(done.status.success(), "{list}\n{done:?}");
        assert_eq!(
            String::from_utf8_lossy(&done.stdout),
            "[{\"partition_id\":0},{\"partition_id\":1}]\n"
        );
        let work = volume.path().join(".ogdc-runs/run-1");
        let manifest: Vec<String> = serde_json::from_str(
            &std::fs::read_to_string(work.join("partition-manifests/pvc-inputs/partition-1.json"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            manifest,
            [
                format!("{}/arctic-dem/tiles/v3/deep/c.tif", root.path().display()),
                format!(
                    "{}/cephfs-qgnet-ogdc-workflow-pvc/extra/d \"q\".txt",
                    root.path().display()
                ),
            ]
        );
        for n in 0..2 {
            let cmd = local(
                spec["templates"][2]["container"]["args"][0]
                    .as_str()
                    .unwrap(),
            )
            .replace("{{inputs.parameters.partition-id}}", &n.to_string());
            let done = sh(&cmd);
            assert!(done.status.success(), "{cmd}\n{done:?}");
        }
        let upper = |n: usize, name: &str| {
            std::fs::read_to_string(work.join(format!("partition-{n}/run-cmd-0/output_dir/{name}")))
                .unwrap()
        };
        assert_eq!(upper(0, "b.tif"), "B");
        assert_eq!(upper(1, "d \"q\".txt"), "D");
        // The claims are read, never written: the links point at them, the outputs do not.
        assert_eq!(
            std::fs::read_to_string(root.path().join("arctic-dem/tiles/v3/a.tif")).unwrap(),
            "a"
        );
    }

    #[test]
    fn the_check_workflow_is_a_helper() {
        let doc = settings().check_published_workflow(&recipe("pvc"));
        let wf = &doc["workflow"];
        assert_eq!(wf["metadata"]["generateName"], "seal-tags-check-published-");
        assert_eq!(wf["metadata"]["labels"][ARCHIVE_LABEL], "false");
        assert_eq!(
            wf["spec"]["templates"][0]["name"],
            "check-already-published"
        );
        assert_eq!(
            wf["spec"]["templates"][0]["outputs"]["parameters"][0]["name"],
            "data-published"
        );
    }
}

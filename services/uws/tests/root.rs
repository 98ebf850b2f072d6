//! As root: two users mapped to OS accounts (made with `useradd`), each one's files owned by
//! that account and unreadable by the other; symlinks planted in a workspace are never
//! followed by a write or a chown. Skipped unless running as root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::{App, assert_refused};
use serde_json::json;
use tessera_workspaces::WorkspaceStatus;
use uws::config::AccountMapping;

const ALICE: &str = "uwstesta";
const BOB: &str = "uwstestb";

fn uid_of(name: &str) -> Option<u32> {
    let out = Command::new("id").args(["-u", name]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Whether `user` can read `path` (running `cat` as that user).
fn can_read(user: &str, path: &std::path::Path) -> bool {
    Command::new("su")
        .args([
            "-s",
            "/bin/sh",
            user,
            "-c",
            &format!("cat '{}' >/dev/null 2>&1", path.display()),
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn each_users_files_belong_to_their_account_and_planted_links_are_not_followed() {
    if !rustix::process::geteuid().is_root() {
        tessera_test_support::infra::skip(
            "each_users_files_belong_to_their_account_and_planted_links_are_not_followed",
            "not running as root",
        );
        return;
    }
    let app = App::spawn_with(|c| {
        let storage = c.available_storage.get_mut("local").unwrap();
        storage.account_mapping = AccountMapping::Os;
        storage.create_users = true;
        storage.min_uid = 1000;
    })
    .await;
    // Let the accounts reach their own workspaces.
    for dir in [app.root.parent().unwrap(), app.root.as_path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let alice = app.login(ALICE, "Alice", "Root").await;
    let bob = app.login(BOB, "Bob", "Root").await;
    let a = app.create(&alice, &json!({"name": "a", "description": "d", "workspace_details": {"files": [{"name": "secret.txt", "content": "alice only"}, {"name": "sub/deep.txt", "content": "x"}]}})).await;
    let b = app.create(&bob, &json!({"name": "b", "description": "d", "workspace_details": {"files": [{"name": "mine.txt", "content": "bob only"}]}})).await;
    let (alice_uid, bob_uid) = (uid_of(ALICE).unwrap(), uid_of(BOB).unwrap());
    assert!(alice_uid >= 1000 && bob_uid >= 1000 && alice_uid != bob_uid);
    let a_dir = app.root.join(format!("{ALICE}/{a}"));
    let b_dir = app.root.join(format!("{BOB}/{b}"));
    for (path, uid) in [
        (a_dir.clone(), alice_uid),
        (a_dir.join("secret.txt"), alice_uid),
        (a_dir.join("sub"), alice_uid),
        (a_dir.join("sub/deep.txt"), alice_uid),
        (b_dir.join("mine.txt"), bob_uid),
        (app.root.join(ALICE), alice_uid),
    ] {
        assert_eq!(
            std::fs::metadata(&path).unwrap().uid(),
            uid,
            "{}",
            path.display()
        );
    }
    assert!(can_read(ALICE, &a_dir.join("secret.txt")));
    assert!(
        !can_read(BOB, &a_dir.join("secret.txt")),
        "bob must not read alice's files"
    );
    assert!(can_read(BOB, &b_dir.join("mine.txt")));
    assert!(
        !can_read(ALICE, &b_dir.join("mine.txt")),
        "alice must not read bob's files"
    );

    // Links planted (as by a job) before a write and a chown: never followed.
    let target = app.outside.join("root-owned.txt");
    std::fs::write(&target, "root").unwrap();
    std::os::unix::fs::symlink(&target, a_dir.join("planted")).unwrap();
    std::os::unix::fs::symlink(&app.outside, a_dir.join("planted-dir")).unwrap();
    let got = app
        .put_json(&format!("/workspaces/{a}/"), Some(&alice), &json!({"workspace_details": {"files": [{"name": "planted", "content": "over"}, {"name": "new.txt", "content": "n"}]}}))
        .await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_refused(
        app.put_json(
            &format!("/workspaces/{a}/"),
            Some(&alice),
            &json!({"workspace_details": {"files": [{"name": "planted-dir/x", "content": "x"}]}}),
        )
        .await,
        400,
        "Invalid file path specified planted-dir/x",
    );
    let meta = std::fs::metadata(&target).unwrap();
    assert_eq!(
        (
            meta.uid(),
            std::fs::read_to_string(&target).unwrap().as_str()
        ),
        (0, "root")
    );
    assert_eq!(std::fs::metadata(&app.outside).unwrap().uid(), 0);
    assert!(!app.outside.join("x").exists());
    assert_eq!(
        std::fs::symlink_metadata(a_dir.join("new.txt"))
            .unwrap()
            .uid(),
        alice_uid
    );

    // A share copies links as links, owned by the recipient; the target stays root's.
    std::os::unix::fs::symlink(&target, a_dir.join("link2")).unwrap();
    let bob_id = app.user_id(&alice, BOB).await;
    let (status, body) = app
        .post_json(
            "/shared_workspaces/",
            Some(&alice),
            &json!({"original_workspace_id": a, "shared_user_ids": [bob_id]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let copy = body["data"]["shared_workspaces"][0]["shared_workspace_id"]["id"]
        .as_i64()
        .unwrap();
    app.wait_for(copy, |w| {
        w.is_some_and(|w| w.status == WorkspaceStatus::Idle)
    })
    .await;
    let copy_dir = app.root.join(format!("{BOB}/{copy}"));
    assert_eq!(
        std::fs::metadata(copy_dir.join("secret.txt"))
            .unwrap()
            .uid(),
        bob_uid
    );
    assert_eq!(
        std::fs::symlink_metadata(copy_dir.join("link2"))
            .unwrap()
            .uid(),
        bob_uid
    );
    assert_eq!(std::fs::metadata(&target).unwrap().uid(), 0);

    // System accounts are never a mapping.
    let daemon = app.login("daemon", "", "").await;
    assert_refused(
        app.post_json(
            "/workspaces/",
            Some(&daemon),
            &json!({"name": "x", "description": "d"}),
        )
        .await,
        400,
        "User could not be found/created on main storage system.",
    );
    app.stop().await;
    for user in [ALICE, BOB] {
        let _ = Command::new("userdel").arg(user).status();
    }
}

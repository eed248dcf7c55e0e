//! The usage journal on its own: append, rotation and release, replay at the next open, a torn
//! last line, files another handle holds.

use super::*;

fn row(model: &str) -> RowKey {
    RowKey {
        day: 20_791,
        key: Some(Arc::from("pvk_0123456789ab")),
        user: None,
        backend: Arc::from("openai"),
        model: Arc::from(model),
    }
}

fn spent(input: u64) -> Amounts {
    Amounts {
        requests: 1,
        input,
        output: 7,
        cached: 2,
        cost_micros: 30,
    }
}

/// The records of the files a start found, summed per row, and how many.
struct Replayed {
    rows: HashMap<RowKey, Amounts>,
    records: usize,
}

fn summed(found: &[Adopted]) -> Replayed {
    let mut rows: HashMap<RowKey, Amounts> = HashMap::new();
    for f in found {
        for (k, a) in &f.rows {
            rows.entry(k.clone()).or_default().add(a);
        }
    }
    let records = found.iter().map(|f| f.records).sum();
    Replayed { rows, records }
}

/// The journal files in `dir`, sorted.
pub(crate) fn journal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "journal"))
        .collect();
    files.sort();
    files
}

#[test]
fn records_survive_a_dropped_journal_and_are_replayed_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, found) = Journal::open(dir.path()).unwrap();
    assert!(found.is_empty());
    for input in [10, 20, 30] {
        j.append(line(&row("gpt-4o"), &spent(input)).as_bytes());
    }
    j.append(line(&row("odd\tmodel%\nname"), &spent(1)).as_bytes());
    // A kill: nothing flushed, the file stays.
    drop(j);
    let (mut next, found) = Journal::open(dir.path()).unwrap();
    let replayed = summed(&found);
    assert_eq!(replayed.records, 4);
    assert_eq!(found.len(), 1);
    assert!(
        found[0].file.id().starts_with("usage-"),
        "{}",
        found[0].file.id()
    );
    let sum = replayed.rows[&row("gpt-4o")];
    assert_eq!((sum.requests, sum.input, sum.output), (3, 60, 21));
    assert_eq!((sum.cached, sum.cost_micros), (6, 90));
    assert_eq!(replayed.rows[&row("odd\tmodel%\nname")], spent(1));
    // Adopted: held by `next`, so a third start does not count it again.
    let adopted_id = found[0].file.id();
    found.into_iter().for_each(|f| next.adopt(f.file));
    let (_third, again) = Journal::open(dir.path()).unwrap();
    assert!(
        again.is_empty(),
        "a file another instance adopted is not replayed"
    );
    assert_eq!(next.rotate(), 1, "the adopted file waits for the store");
    assert_eq!(next.ids(1), [adopted_id]);
    drop(next);
}

#[test]
fn a_rotation_closes_the_file_and_release_deletes_what_the_store_took() {
    let dir = tempfile::tempdir().unwrap();
    let (mut j, _) = Journal::open(dir.path()).unwrap();
    assert_eq!(j.rotate(), 0, "nothing written: no rotation");
    assert_eq!(journal_files(dir.path()).len(), 1);
    j.append(line(&row("m"), &spent(1)).as_bytes());
    let covered = j.rotate();
    assert_eq!(covered, 1);
    assert_eq!(
        journal_files(dir.path()).len(),
        2,
        "the closed file and the next"
    );
    j.append(line(&row("m"), &spent(2)).as_bytes());
    // A failed flush releases nothing; the next rotation covers both files.
    let covered = j.rotate();
    assert_eq!(covered, 2);
    j.release(covered).into_iter().for_each(Held::delete);
    let left = journal_files(dir.path());
    assert_eq!(left.len(), 1, "only the current file: {left:?}");
    assert!(std::fs::read(&left[0]).unwrap().is_empty());
    drop(j);
    assert!(
        journal_files(dir.path()).is_empty(),
        "an empty current file is removed"
    );
}

#[test]
fn a_torn_last_line_is_skipped_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let whole = line(&row("m"), &spent(5));
    let torn = &whole[..whole.len() / 2];
    let text = format!("{whole}garbage line\n{whole}{torn}");
    std::fs::write(dir.path().join("usage-dead-000001.journal"), text).unwrap();
    let (_j, found) = Journal::open(dir.path()).unwrap();
    let replayed = summed(&found);
    assert_eq!(replayed.records, 2);
    assert_eq!(found[0].file.id(), "usage-dead-000001");
    assert_eq!(replayed.rows[&row("m")].input, 10);
}

#[test]
fn a_file_another_handle_locks_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage-live-000001.journal");
    std::fs::write(&path, line(&row("m"), &spent(5))).unwrap();
    let holder = File::open(&path).unwrap();
    holder.try_lock().unwrap();
    let (j, found) = Journal::open(dir.path()).unwrap();
    assert!(found.is_empty(), "a running instance's file");
    drop(j);
    holder.unlock().unwrap();
    let (_j, found) = Journal::open(dir.path()).unwrap();
    assert_eq!(summed(&found).records, 1, "once no one holds it");
}

#[cfg(unix)]
#[test]
fn the_directory_is_private_and_lines_carry_no_more_than_ids() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_j, _) = Journal::open(&data).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&journal_files(&data)[0]), 0o600);
    assert_eq!(
        line(&row("gpt-4o"), &spent(3)),
        "u1\t20791\tpvk_0123456789ab\t\topenai\tgpt-4o\t1\t3\t7\t2\t30\n"
    );
}

//! Bad-data handling: empty rows, missing columns, non-UTF-8 bytes, malformed rows and targets
//! longer than the context are each reported with file and row, skipped (`skip`) or rejected
//! (`error`); nothing is silently lost (rows read = usable + reported). JSONL, CSV and Parquet;
//! the external rephrase command; seeded determinism of the prepared data.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use promptist::text::gpt2::Gpt2Tokenizer;
use promptist_train::data::bad::{BadReason, BadRows};
use promptist_train::data::prepare::{prepare, DataOptions};
use promptist_train::data::read::{read_file, Columns};
use promptist_train::data::sources::SourceOptions;
use promptist_train::data::{OnBadRow, SourceKind};

fn opts(files: Vec<PathBuf>, policy: OnBadRow, max_length: usize) -> DataOptions {
    DataOptions {
        files,
        columns: Columns::default(),
        sources: SourceOptions::with_kinds(7, "mc,mcm", None).unwrap(),
        on_bad_row: policy,
        val_fraction: 0.25,
        max_length,
        seed: 7,
    }
}

fn write_bytes(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path).unwrap().write_all(bytes).unwrap();
}

fn jsonl_with_bad_rows(dir: &Path) -> PathBuf {
    let p = dir.join("mixed.jsonl");
    let long = vec!["highly detailed"; 200].join(", ");
    let mut b = Vec::new();
    b.extend_from_slice(b"{\"target\": \"a red fox in the snow, highly detailed, digital painting\"}\n"); // 1 ok
    b.extend_from_slice(b"\n"); // 2 empty
    b.extend_from_slice(b"{\"target\": \"a castle, matte pa\xffinting\"}\n"); // 3 non-UTF-8
    b.extend_from_slice(b"{\"prompt_x\": \"no target column\"}\n"); // 4 missing column
    b.extend_from_slice(b"{\"target\": \"   \"}\n"); // 5 empty target
    b.extend_from_slice(b"{\"target\": \"broken json\"\n"); // 6 malformed
    b.extend_from_slice(format!("{{\"target\": \"a dragon, {long}\"}}\n").as_bytes()); // 7 too long
    b.extend_from_slice(b"{\"target\": \"a cottage by the sea, volumetric lighting\"}\n"); // 8 ok
    b.extend_from_slice(b"{\"target\": \"an owl at night, concept art, 8 k\"}\n"); // 9 ok
    write_bytes(&p, &b);
    p
}

#[test]
fn jsonl_bad_rows_are_reported_with_file_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = jsonl_with_bad_rows(dir.path());
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let data = prepare(&opts(vec![p.clone()], OnBadRow::Skip, 256), &tok).unwrap();
    let got: Vec<(usize, BadReason)> = data.bad.rows.iter().map(|r| (r.origin.row, r.reason)).collect();
    // the too-long target makes both of its pairs (mc, mcm) too long: each dropped pair is reported
    assert_eq!(
        got,
        vec![
            (2, BadReason::EmptyRow),
            (3, BadReason::NonUtf8),
            (4, BadReason::MissingColumn),
            (5, BadReason::EmptyTarget),
            (6, BadReason::Malformed),
            (7, BadReason::TooLong),
            (7, BadReason::TooLong),
        ]
    );
    assert!(data.bad.rows.iter().all(|r| r.origin.file == p.display().to_string()));
    assert_eq!(data.stats.rows_read, 9);
    // 4 records survive reading (rows 1, 7, 8, 9); row 7 loses both pairs to the length limit
    assert_eq!(data.stats.records, 4);
    assert_eq!(data.train.len() + data.val.len(), 6);
    let report = dir.path().join("bad.jsonl");
    data.bad.write_jsonl(&report).unwrap();
    assert_eq!(std::fs::read_to_string(&report).unwrap().lines().count(), 7);

    // error mode: the first bad row stops the run and names file:row
    let err = prepare(&opts(vec![p.clone()], OnBadRow::Error, 256), &tok).err().expect("must fail").to_string();
    assert!(err.contains(&format!("{}:2", p.display())) && err.contains("empty_row"), "{err}");
}

#[test]
fn csv_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pairs.csv");
    let mut b = Vec::new();
    b.extend_from_slice(b"source,target\n");
    b.extend_from_slice(b"a fox,\"a fox, highly detailed\"\n"); // line 2 ok (pair)
    b.extend_from_slice(b",\n"); // 3 empty row
    b.extend_from_slice(b"a cat\n"); // 4 missing target field
    b.extend_from_slice(b"a dog,\"a dog, sh\xfearp focus\"\n"); // 5 non-UTF-8
    b.extend_from_slice(b"an owl,\"an owl, 8 k\"\n"); // 6 ok
    write_bytes(&p, &b);
    let mut o = opts(vec![p.clone()], OnBadRow::Skip, 256);
    o.columns.source = Some("source".into());
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let data = prepare(&o, &tok).unwrap();
    let got: Vec<(usize, BadReason)> = data.bad.rows.iter().map(|r| (r.origin.row, r.reason)).collect();
    assert_eq!(got, vec![(3, BadReason::EmptyRow), (4, BadReason::MissingColumn), (5, BadReason::NonUtf8)]);
    assert_eq!(data.stats.rows_read, 5);
    let all: Vec<_> = data.train.iter().chain(&data.val).collect();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|e| e.kind == SourceKind::Given));
}

/// A DiffusionDB-like parquet (columns prompt, seed; one null, one non-UTF-8 prompt).
fn write_parquet(path: &Path) {
    use parquet::data_type::{ByteArray, ByteArrayType, Int32Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;
    let schema = Arc::new(parse_message_type("message schema { OPTIONAL BYTE_ARRAY prompt (UTF8); REQUIRED INT32 seed; }").unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let prompts: Vec<ByteArray> = vec![
        ByteArray::from("a red fox in the snow, highly detailed, artstation"),
        ByteArray::from(vec![b'a', b' ', 0xff, b'x']),
        ByteArray::from("a lighthouse, matte painting"),
    ];
    // rows: 1 ok, 2 null, 3 non-UTF-8, 4 ok
    let def = [1i16, 0, 1, 1];
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>().write_batch(&prompts, Some(&def), None).unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<Int32Type>().write_batch(&[1, 2, 3, 4], None, None).unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}

#[test]
fn parquet_prompt_column_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("metadata.parquet");
    write_parquet(&p);
    let mut bad = BadRows::new(OnBadRow::Skip);
    let (recs, rows) = read_file(&p, &Columns::default(), &mut bad).unwrap();
    assert_eq!(rows, 4);
    assert_eq!(recs.iter().map(|r| r.origin.row).collect::<Vec<_>>(), vec![1, 4]);
    assert_eq!(recs[0].target, "a red fox in the snow, highly detailed, artstation");
    let got: Vec<(usize, BadReason)> = bad.rows.iter().map(|r| (r.origin.row, r.reason)).collect();
    assert_eq!(got, vec![(2, BadReason::EmptyTarget), (3, BadReason::NonUtf8)]);
    // a named column that does not exist is an error naming the columns there
    let cols = Columns { target: Some("text".into()), ..Default::default() };
    let err = read_file(&p, &cols, &mut BadRows::new(OnBadRow::Skip)).err().unwrap().to_string();
    assert!(err.contains("no column \"text\"") && err.contains("prompt"), "{err}");
}

#[test]
fn rephrase_command_supplies_kinds_3_and_4_and_missing_ones_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.jsonl");
    std::fs::write(&p, "{\"target\": \"a red fox in the snow, highly detailed\"}\n{\"target\": \"an owl, concept art\", \"rephrase_main\": \"a bird of the night\"}\n").unwrap();
    // echoes each text prefixed by "picture of ", but drops id 1 (record 0's target rephrasing)
    let cmd = r#"grep -v '"id":1,' | sed -e 's/"kind":"[a-z_]*",//' -e 's/"text":"/"text":"picture of /'"#;
    let mut o = opts(vec![p], OnBadRow::Skip, 256);
    o.sources = SourceOptions::with_kinds(7, "all", Some(cmd.to_string())).unwrap();
    o.val_fraction = 0.0;
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let data = prepare(&o, &tok).unwrap();
    let kinds: Vec<SourceKind> = data.train.iter().map(|e| e.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == SourceKind::RephrasedMain).count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == SourceKind::RephrasedTarget).count(), 1);
    let got: Vec<(usize, BadReason)> = data.bad.rows.iter().map(|r| (r.origin.row, r.reason)).collect();
    assert_eq!(got, vec![(1, BadReason::RephraseMissing)]);
    let texts: Vec<String> = data.train.iter().map(|e| tok.decode(&e.ids.iter().map(|&i| i as u32).collect::<Vec<_>>()).unwrap()).collect();
    assert!(texts.iter().any(|t| t.to_lowercase().starts_with("picture of a red fox in the snow")), "{texts:?}");
    assert!(texts.iter().any(|t| t.to_lowercase().starts_with("a bird of the night")), "{texts:?}");
    assert!(texts.iter().all(|t| t.contains(" Rephrase: ") && t.ends_with("<|endoftext|>")), "{texts:?}");
}

#[test]
fn prepared_data_is_seeded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.jsonl");
    promptist_train::demo::corpus::write_corpus(&p, 100, 3).unwrap();
    let tok = Gpt2Tokenizer::embedded().unwrap();
    let a = prepare(&opts(vec![p.clone()], OnBadRow::Error, 256), &tok).unwrap();
    let b = prepare(&opts(vec![p.clone()], OnBadRow::Error, 256), &tok).unwrap();
    assert_eq!(a.stats.fingerprint, b.stats.fingerprint);
    assert_eq!(a.train, b.train);
    let mut o = opts(vec![p], OnBadRow::Error, 256);
    o.seed = 8;
    o.sources.seed = 8;
    let c = prepare(&o, &tok).unwrap();
    assert_ne!(a.stats.fingerprint, c.stats.fingerprint);
    // targets never straddle the split
    let val_targets: std::collections::HashSet<usize> = a.val.iter().map(|e| e.origin.row).collect();
    assert!(a.train.iter().all(|e| !val_targets.contains(&e.origin.row)));
    assert_eq!(a.stats.val_targets, 25);
}

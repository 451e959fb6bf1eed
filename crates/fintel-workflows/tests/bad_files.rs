//! Every kind of bad workflow file is refused with the file, the line and an actionable
//! message; and edits that change nothing a model sees keep the version.

use std::path::{Path, PathBuf};

use fintel_workflows::{OutputValidator, Problem, Workflow, WorkflowError};

const GOOD_SCHEMA: &str = r#"'''
{
  "type": "object",
  "additionalProperties": false,
  "required": ["evidence", "rating"],
  "properties": {
    "evidence": {"type": "string"},
    "rating": {"type": "string", "enum": ["good", "bad"]}
  }
}
'''"#;

fn good_file() -> String {
    format!(
        r#"# A small custom type.
name = "mine"
description = "A test type"

[year]
system = "Be brief."
prompt = """
Judge the report.
Company: {{company_name}} ({{ticker}}), {{year}}, {{form}}.
{{document}}
Return JSON."""
schema = {GOOD_SCHEMA}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `text` as `mine.toml` and returns the error, its line and its message.
fn load_error(text: &str) -> (WorkflowError, Option<usize>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mine.toml", text);
    let error = Workflow::from_file(&path).expect_err("the file should be refused");
    let message = error.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "names the file: {message}"
    );
    let line = match &error {
        WorkflowError::Invalid { line, .. } => *line,
        other => panic!("unexpected error kind: {other:?}"),
    };
    (error, line, message)
}

fn assert_refused(text: &str, line: Option<usize>, expected: &[&str]) -> WorkflowError {
    let (error, actual_line, message) = load_error(text);
    assert_eq!(actual_line, line, "line of: {message}");
    if let Some(line) = line {
        assert!(message.contains(&format!(" line {line}: ")), "{message}");
    }
    for part in expected {
        assert!(
            message.contains(part),
            "{message:?} should contain {part:?}"
        );
    }
    error
}

fn problem(error: &WorkflowError) -> &Problem {
    match error {
        WorkflowError::Invalid { problem, .. } => problem,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_good_file_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mine.toml", &good_file());
    let workflow = Workflow::from_file(&path).unwrap();
    assert_eq!(workflow.name, "mine");
    assert_eq!(workflow.min_years, 1);
    assert!(!workflow.is_multi_year());
    assert_eq!(
        workflow.year.as_ref().unwrap().system.as_deref(),
        Some("Be brief.")
    );
}

#[test]
fn toml_syntax_error() {
    let text = good_file().replace(
        "description = \"A test type\"",
        "description = \"A test type",
    );
    assert_refused(&text, Some(3), &["line 3"]);
}

#[test]
fn missing_field() {
    let text = good_file().replace("description = \"A test type\"\n", "");
    let error = assert_refused(&text, Some(1), &["missing field `description`"]);
    assert!(matches!(problem(&error), Problem::Toml { .. }));
}

#[test]
fn unknown_top_level_field() {
    let text = good_file().replace("description =", "descripton =");
    assert_refused(
        &text,
        Some(3),
        &["unknown field `descripton`", "description"],
    );
}

#[test]
fn unknown_step_field() {
    let text = good_file().replace("system = ", "sytem = ");
    assert_refused(&text, Some(6), &["unknown field `sytem`", "system"]);
}

#[test]
fn wrong_type() {
    let text = good_file().replace("description", "min_years = \"three\"\ndescription");
    assert_refused(
        &text,
        Some(3),
        &["invalid type", "in `min_years = \"three\"`"],
    );
}

#[test]
fn unknown_kind() {
    let text = good_file().replace("description", "kind = \"gpt\"\ndescription");
    assert_refused(&text, Some(3), &["gpt", "llm", "xbrl"]);
}

#[test]
fn bad_name() {
    let text = good_file().replace("name = \"mine\"", "name = \"My Type\"");
    assert_refused(
        &text,
        Some(2),
        &["\"My Type\" is not a valid type name", "lower-case"],
    );
}

#[test]
fn empty_description() {
    let text = good_file().replace("\"A test type\"", "\"  \"");
    assert_refused(&text, Some(3), &["description: must not be empty"]);
}

#[test]
fn years_out_of_range() {
    let text = good_file().replace("description", "min_years = 0\ndescription");
    assert_refused(&text, Some(3), &["min_years: 0 is not a number of years"]);
    let text = good_file().replace("description", "max_years = 1000\ndescription");
    assert_refused(&text, Some(3), &["max_years: 1000"]);
}

#[test]
fn min_years_above_max_years() {
    let text = good_file().replace("description", "min_years = 3\nmax_years = 2\ndescription");
    let error = assert_refused(
        &text,
        Some(4),
        &["min_years (3) is greater than max_years (2)"],
    );
    assert!(matches!(
        problem(&error),
        Problem::YearRange { min: 3, max: 2 }
    ));
}

#[test]
fn multi_year_without_aggregate() {
    let text = good_file().replace("description", "min_years = 3\ndescription");
    assert_refused(
        &text,
        Some(3),
        &["min_years = 3", "needs an [aggregate] step"],
    );
}

#[test]
fn aggregate_with_min_years_one() {
    let text = format!(
        "{}\n[aggregate]\nprompt = \"{{yearly_results}}\"\nschema = {GOOD_SCHEMA}\n",
        good_file()
    );
    assert_refused(&text, Some(24), &["set min_years to at least 2"]);
}

#[test]
fn missing_year_step() {
    let text = "name = \"mine\"\ndescription = \"x\"\n";
    assert_refused(text, Some(1), &["missing [year] step"]);
}

#[test]
fn step_without_prompt() {
    let text = good_file().replace("prompt = \"\"\"", "notes = \"\"\"");
    assert_refused(&text, Some(7), &["unknown field `notes`"]);
    let start = good_file().find("prompt = \"\"\"").unwrap();
    let end = good_file().find("Return JSON.\"\"\"\n").unwrap() + "Return JSON.\"\"\"\n".len();
    let mut text = good_file();
    text.replace_range(start..end, "");
    assert_refused(&text, Some(5), &["[year] has no `prompt`"]);
}

#[test]
fn unknown_placeholder_is_located_on_its_line() {
    let text = good_file().replace("({ticker})", "({tikcer})");
    let error = assert_refused(
        &text,
        Some(9),
        &[
            "unknown placeholder {tikcer} in [year].prompt",
            "use one of {ticker}, {company_name}, {year}, {form}, {document}",
            "{{ and }}",
        ],
    );
    assert!(matches!(
        problem(&error),
        Problem::UnknownPlaceholder { placeholder, step: "year", .. } if placeholder == "tikcer"
    ));
}

#[test]
fn placeholder_of_the_other_step() {
    let text = good_file().replace("{year}, {form}", "{years}, {form}");
    assert_refused(
        &text,
        Some(9),
        &["unknown placeholder {years} in [year].prompt"],
    );
}

#[test]
fn document_placeholder_in_an_aggregate_step() {
    let text = format!(
        "{}\n[aggregate]\nprompt = \"{{document}} {{yearly_results}}\"\nschema = {GOOD_SCHEMA}\n",
        good_file().replace("description", "min_years = 2\ndescription")
    );
    assert_refused(
        &text,
        Some(26),
        &[
            "unknown placeholder {document} in [aggregate].prompt",
            "{yearly_results}",
        ],
    );
}

#[test]
fn document_missing_or_repeated() {
    let text = good_file().replace("{document}", "the report");
    let error = assert_refused(&text, Some(7), &["must contain {document} exactly once"]);
    assert!(matches!(
        problem(&error),
        Problem::MissingPlaceholder { .. }
    ));
    let text = good_file().replace("Return JSON.", "{document}");
    assert_refused(&text, Some(10), &["contains {document} 2 times"]);
}

#[test]
fn aggregate_without_yearly_results() {
    let text = format!(
        "{}\n[aggregate]\nprompt = \"Judge {{years}}.\"\nschema = {GOOD_SCHEMA}\n",
        good_file().replace("description", "min_years = 2\ndescription")
    );
    assert_refused(
        &text,
        Some(26),
        &["[aggregate].prompt must contain {yearly_results}"],
    );
}

#[test]
fn lone_braces() {
    // A JSON example reads as a placeholder; the message says how to escape it.
    let text = good_file().replace("Judge the report.", "Return {\"a\": 1}.");
    assert_refused(
        &text,
        Some(8),
        &[
            "unknown placeholder {\"a\": 1}",
            "write {{ and }} for literal braces",
        ],
    );
    let text = good_file().replace("Judge the report.", "Return { then");
    let error = assert_refused(
        &text,
        Some(8),
        &[
            "a `{` that is not closed on the same line near `{ then`",
            "write {{ or }} for a literal brace",
        ],
    );
    assert!(matches!(problem(&error), Problem::UnbalancedBrace { .. }));
    let text = good_file().replace("Judge the report.", "Judge } the report.");
    assert_refused(&text, Some(8), &["a lone `}`"]);
    // Escaped, the same text is fine and renders with single braces.
    let text = good_file().replace("Judge the report.", "Return {{\"a\": 1}}.");
    let dir = tempfile::tempdir().unwrap();
    let workflow = Workflow::from_file(&write(dir.path(), "mine.toml", &text)).unwrap();
    let rendered = workflow
        .year
        .unwrap()
        .render_year(&fintel_workflows::YearVars {
            ticker: "T",
            company_name: "C",
            year: 2020,
            form: "10-K",
            document: "D",
        });
    assert!(rendered.starts_with("Return {\"a\": 1}."), "{rendered}");
}

#[test]
fn placeholder_in_system_instruction() {
    let text = good_file().replace("\"Be brief.\"", "\"Analyse {ticker}.\"");
    assert_refused(
        &text,
        Some(6),
        &["takes no placeholders", "move {ticker} to the prompt"],
    );
}

#[test]
fn no_schema_or_two_schemas() {
    let text = good_file().replace(&format!("schema = {GOOD_SCHEMA}\n"), "");
    assert_refused(&text, Some(5), &["[year] has no schema", "schema_file"]);
    let text = format!("{}schema_file = \"s.json\"\n", good_file());
    assert_refused(&text, Some(23), &["both `schema` and `schema_file`"]);
}

#[test]
fn schema_that_is_not_json_is_located_inside_the_string() {
    let text = good_file().replace(
        "\"additionalProperties\": false,",
        "\"additionalProperties\": false",
    );
    let error = assert_refused(&text, Some(16), &["schema of [year] is not valid JSON"]);
    assert!(matches!(
        problem(&error),
        Problem::SchemaSyntax { step: "year", .. }
    ));
}

#[test]
fn schema_of_the_wrong_toml_type() {
    let text = good_file().replace(&format!("schema = {GOOD_SCHEMA}"), "schema = 5");
    assert_refused(&text, Some(12), &["must be a JSON string or a TOML table"]);
}

#[test]
fn schema_with_a_keyword_gemini_does_not_support() {
    let text = good_file().replace(
        "\"evidence\": {\"type\": \"string\"}",
        "\"evidence\": {\"type\": \"string\", \"pattern\": \"^x\"}",
    );
    let error = assert_refused(
        &text,
        Some(18),
        &[
            "at /properties/evidence",
            "keyword `pattern` is not supported",
            "propertyOrdering",
        ],
    );
    assert!(matches!(problem(&error), Problem::SchemaUnsupported { .. }));
}

#[test]
fn schema_that_is_not_a_valid_schema() {
    let text = good_file().replace("\"enum\": [\"good\", \"bad\"]", "\"enum\": [\"good\", 3]");
    assert_refused(&text, Some(19), &["`enum` value 3 does not fit"]);
    let text = good_file().replace(
        "\"type\": \"object\",\n  \"additional",
        "\"type\": \"array\",\n  \"additional",
    );
    assert_refused(&text, Some(14), &["\"type\": \"object\""]);
    let text = good_file().replace("[\"evidence\", \"rating\"]", "[\"evidence\", \"ratings\"]");
    assert_refused(
        &text,
        Some(16),
        &["names \"ratings\", which is not in `properties`"],
    );
    let text = good_file().replace("{\"type\": \"string\"}", "{\"type\": \"str\"}");
    assert_refused(&text, Some(18), &["unknown type \"str\""]);
}

#[test]
fn a_schema_the_local_validator_cannot_compile_is_reported() {
    // Loading never gets this far (the subset check is stricter), but a hand-built step can.
    let error = OutputValidator::new(&serde_json::json!({"type": 5})).unwrap_err();
    assert!(error
        .to_string()
        .starts_with("cannot compile the output schema"));
}

#[test]
fn schema_as_a_toml_table() {
    let table = r#"
[year.schema]
type = "object"
required = ["rating"]

[year.schema.properties.rating]
type = "string"
enum = ["good", "bad"]
"#;
    let text = good_file().replace(&format!("schema = {GOOD_SCHEMA}\n"), "") + table;
    let dir = tempfile::tempdir().unwrap();
    let workflow = Workflow::from_file(&write(dir.path(), "mine.toml", &text)).unwrap();
    let schema = &workflow.year.as_ref().unwrap().schema;
    assert_eq!(schema["properties"]["rating"]["enum"][1], "bad");

    let bad = text.replace(
        "enum = [\"good\", \"bad\"]",
        "enum = [\"good\", \"bad\"]\nminLength = 1",
    );
    assert_refused(&bad, Some(13), &["keyword `minLength` is not supported"]);
    let date = text.replace(
        "type = \"string\"\n",
        "type = \"string\"\nformat = 2024-01-01\n",
    );
    assert_refused(&date, Some(19), &["date has no JSON equivalent"]);
}

#[test]
fn schema_file_next_to_the_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let inline_path = write(dir.path(), "inline.toml", &good_file());
    let json = GOOD_SCHEMA
        .trim_start_matches("'''")
        .trim_end_matches("'''");
    write(dir.path(), "mine.json", json);
    let with_file = good_file().replace(
        &format!("schema = {GOOD_SCHEMA}"),
        "schema_file = \"mine.json\"",
    );
    let file_path = write(dir.path(), "mine.toml", &with_file);
    let inline = Workflow::from_file(&inline_path).unwrap();
    let from_file = Workflow::from_file(&file_path).unwrap();
    assert_eq!(inline.year, from_file.year);
    assert_eq!(
        inline.version, from_file.version,
        "moving the schema keeps the version"
    );
    // The pinned copy carries the schema itself.
    assert!(!from_file.canonical.contains("schema_file"));
    let pinned = Workflow::from_canonical(&from_file.canonical).unwrap();
    assert_eq!(pinned.version, from_file.version);

    // A problem inside the JSON file names the JSON file and its line.
    write(
        dir.path(),
        "mine.json",
        &json.replace(
            "{\"type\": \"string\"}",
            "{\"type\": \"string\",\n \"minLength\": 2}",
        ),
    );
    let message = Workflow::from_file(&file_path).unwrap_err().to_string();
    let json_path = dir.path().join("mine.json").display().to_string();
    assert!(
        message.starts_with(&format!("{json_path} line 8: ")),
        "{message}"
    );
    assert!(message.contains("minLength"));

    write(dir.path(), "mine.json", "{ nope");
    let message = Workflow::from_file(&file_path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!(
            "{json_path} line 1: schema of [year] is not valid JSON"
        )),
        "{message}"
    );
}

#[test]
fn missing_or_escaping_schema_file() {
    let text = good_file().replace(
        &format!("schema = {GOOD_SCHEMA}"),
        "schema_file = \"gone.json\"",
    );
    let error = assert_refused(
        &text,
        Some(12),
        &["schema_file of [year]: cannot read", "gone.json"],
    );
    assert!(matches!(problem(&error), Problem::SchemaFile { .. }));
    let text = good_file().replace(
        &format!("schema = {GOOD_SCHEMA}"),
        "schema_file = \"../etc/x.json\"",
    );
    assert_refused(&text, Some(12), &["without `..`"]);
    let text = good_file().replace(
        &format!("schema = {GOOD_SCHEMA}"),
        "schema_file = \"/etc/x.json\"",
    );
    assert_refused(&text, Some(12), &["relative"]);
}

#[test]
fn custom_files_cannot_claim_xbrl() {
    let text = good_file().replace("description", "kind = \"xbrl\"\ndescription");
    assert_refused(
        &text,
        Some(3),
        &["\"xbrl\" is reserved for the built-in `financials`"],
    );
}

#[test]
fn unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(&path, [0xff, 0xfe, b'x']).unwrap();
    let message = Workflow::from_file(&path).unwrap_err().to_string();
    assert!(message.contains("not UTF-8"), "{message}");
    std::fs::write(&path, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    let message = Workflow::from_file(&path).unwrap_err().to_string();
    assert!(message.contains("at most 1048576 bytes"), "{message}");
    let message = Workflow::from_file(&dir.path().join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("cannot read the file"), "{message}");
}

#[test]
fn pinned_text_that_is_corrupted_is_refused() {
    let error = Workflow::from_canonical("name = \"x\"\n[year\n").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("workflow pinned in the database line 2"),
        "{error}"
    );
}

fn version_of(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    Workflow::from_file(&write(dir.path(), "mine.toml", text))
        .unwrap()
        .version
}

#[test]
fn versions_ignore_form_and_follow_meaning() {
    let base = version_of(&good_file());
    // Comments, blank lines, trailing blanks, CRLF line ends, key order: same version.
    let cosmetic = good_file()
        .replace("# A small custom type.", "# Another comment\n\n")
        .replace("Judge the report.", "Judge the report.   ")
        .replace(
            "\"required\": [\"evidence\", \"rating\"],\n  \"properties\"",
            "\"properties\"",
        )
        .replace(
            "\"additionalProperties\": false,",
            "\"required\": [\"evidence\", \"rating\"], \"additionalProperties\": false,",
        );
    assert_eq!(version_of(&cosmetic), base);
    assert_eq!(version_of(&good_file().replace('\n', "\r\n")), base);
    // Labels that never reach the model: same version.
    assert_eq!(
        version_of(&good_file().replace("\"mine\"", "\"renamed\"")),
        base
    );
    assert_eq!(
        version_of(&good_file().replace("A test type", "Other words")),
        base
    );
    // Anything the model sees or the reply is checked against: new version.
    for changed in [
        good_file().replace("Judge the report.", "Judge the report!"),
        good_file().replace("Be brief.", "Be very brief."),
        good_file().replace("[\"good\", \"bad\"]", "[\"good\", \"poor\"]"),
        good_file().replace(
            "\"type\": \"string\"}",
            "\"type\": \"string\", \"description\": \"d\"}",
        ),
        good_file().replace("description", "max_years = 5\ndescription"),
    ] {
        assert_ne!(version_of(&changed), base);
    }
    // Swapping the order of properties changes the order of the reply, hence the version.
    let swapped = good_file().replace(
        "\"evidence\": {\"type\": \"string\"},\n    \"rating\": {\"type\": \"string\", \"enum\": [\"good\", \"bad\"]}",
        "\"rating\": {\"type\": \"string\", \"enum\": [\"good\", \"bad\"]},\n    \"evidence\": {\"type\": \"string\"}",
    );
    assert_ne!(swapped, good_file());
    assert_ne!(version_of(&swapped), base);
}

#[test]
fn awkward_text_survives_pinning() {
    let text = good_file()
        .replace(
            "Be brief.",
            r#"Quotes \" and ''' and \"\"\" and \\ and tabs\t and é ✓"#,
        )
        .replace(
            "Judge the report.",
            r#"Judge '''the''' \"\"\"report\"\"\" \\ {{literal}}."#,
        );
    let dir = tempfile::tempdir().unwrap();
    let workflow = Workflow::from_file(&write(dir.path(), "mine.toml", &text)).unwrap();
    let step = workflow.year.as_ref().unwrap();
    assert!(step
        .system
        .as_ref()
        .unwrap()
        .contains("''' and \"\"\" and \\ and tabs\t"));
    assert!(step
        .prompt
        .contains(r#"'''the''' """report""" \ {{literal}}."#));
    let pinned = Workflow::from_canonical(&workflow.canonical).unwrap();
    assert_eq!(pinned.year, workflow.year);
    assert_eq!(pinned.version, workflow.version);
}

#[test]
fn xbrl_types_take_no_prompt_and_no_aggregate() {
    // Only built-in and pinned texts may be kind = "xbrl"; the pinned path checks the same rules.
    let financials = fintel_workflows::Registry::load(&[])
        .unwrap()
        .get("financials")
        .unwrap()
        .canonical
        .clone();
    let with_prompt = financials.replace("[year]\n", "[year]\nprompt = \"{document}\"\n");
    assert_ne!(with_prompt, financials);
    let error = Workflow::from_canonical(&with_prompt).unwrap_err();
    assert!(error.to_string().contains("asks no model"), "{error}");

    let with_aggregate = format!("{financials}\n[aggregate]\nprompt = \"{{yearly_results}}\"\n");
    let error = Workflow::from_canonical(&with_aggregate).unwrap_err();
    assert!(
        error.to_string().contains("has no [aggregate] step"),
        "{error}"
    );
}

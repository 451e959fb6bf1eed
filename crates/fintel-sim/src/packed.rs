//! Packed requests (several fiscal years in one request, answered as one object with a
//! `fyYYYY` property per year): recognising them, and the fault that spoils one year's part
//! so a client's per-year validation can be tested.

use serde_json::Value;

/// The fiscal years of a packed response schema (`propertyOrdering` of `fyYYYY` names, or its
/// properties), oldest first; empty for any other schema.
pub fn packed_years(schema: &Value) -> Vec<i32> {
    let names: Vec<&str> = match schema.get("propertyOrdering").and_then(Value::as_array) {
        Some(order) => order.iter().filter_map(Value::as_str).collect(),
        None => match schema.get("properties").and_then(Value::as_object) {
            Some(props) => props.keys().map(String::as_str).collect(),
            None => return Vec::new(),
        },
    };
    let years: Vec<i32> = names
        .iter()
        .filter_map(|n| n.strip_prefix("fy")?.parse().ok())
        .collect();
    if years.len() < 2 || years.len() != names.len() {
        return Vec::new();
    }
    let mut years = years;
    years.sort_unstable();
    years
}

/// Makes the oldest year's part of a packed answer invalid against its schema: an empty
/// object when the part's schema requires fields, else a value of the wrong type. Returns the
/// year spoiled, if the answer was packed.
pub fn spoil_oldest_part(answer: &mut Value, schema: &Value) -> Option<i32> {
    let year = *packed_years(schema).first()?;
    let name = format!("fy{year}");
    let part_schema = schema.get("properties")?.get(&name)?;
    let requires = part_schema
        .get("required")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    let spoiled = if requires {
        Value::Object(Default::default())
    } else {
        Value::String("not an analysis".into())
    };
    *answer.get_mut(&name)? = spoiled;
    Some(year)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_packed_schemas_are_recognised_and_their_oldest_part_spoiled() {
        let part =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        let packed = json!({
            "type": "object",
            "properties": {"fy2022": part, "fy2021": part},
            "required": ["fy2021", "fy2022"],
            "propertyOrdering": ["fy2021", "fy2022"]
        });
        assert_eq!(packed_years(&packed), [2021, 2022]);
        assert!(packed_years(&part).is_empty());
        assert!(
            packed_years(&json!({"properties": {"fy2021": {}}})).is_empty(),
            "one year"
        );
        let mut answer = json!({"fy2021": {"a": "x"}, "fy2022": {"a": "y"}});
        assert_eq!(spoil_oldest_part(&mut answer, &packed), Some(2021));
        assert_eq!(answer, json!({"fy2021": {}, "fy2022": {"a": "y"}}));
        // The simulator answers a packed schema like any other: every year, every required
        // field, in year order.
        let mut rng = crate::rng::DetRng::new(1, &[2]);
        let answered = crate::answer::value_for_schema(&packed, &mut rng);
        let keys: Vec<&String> = answered.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2);
        for year in ["fy2021", "fy2022"] {
            assert!(answered[year]["a"].is_string(), "{answered}");
        }
        let mut single = json!({"a": "x"});
        assert_eq!(spoil_oldest_part(&mut single, &part), None);
        assert_eq!(single, json!({"a": "x"}));
    }

    #[test]
    fn a_share_of_spoiled_parts_outside_0_to_1_is_refused() {
        let mut config = crate::SimConfig::default();
        config.gemini.invalid_packed_part = 1.5;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("gemini.invalid_packed_part = 1.5"), "{err}");
        config.gemini.invalid_packed_part = 1.0;
        config.validate().unwrap();
    }
}

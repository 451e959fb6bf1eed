//! The Parquet writer: integer identifying columns as nullable INT64, all else nullable UTF8.

use std::sync::Arc;

use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::flatten::{Cell, Table};
use crate::rows::INTEGER_COLUMNS;

pub(crate) fn write(table: &Table, out: &mut std::fs::File) -> Result<(), String> {
    write_inner(table, out).map_err(|e| format!("parquet: {e}"))
}

fn is_integer_column(index: usize, name: &str) -> bool {
    // Only identifying columns have a fixed type; result columns are always strings.
    index < crate::IDENTIFYING_COLUMNS.len() && INTEGER_COLUMNS.contains(&name)
}

fn write_inner(table: &Table, out: &mut std::fs::File) -> parquet::errors::Result<()> {
    let mut fields = Vec::with_capacity(table.columns.len());
    for (i, name) in table.columns.iter().enumerate() {
        let field = if is_integer_column(i, name) {
            Type::primitive_type_builder(name, PhysicalType::INT64)
                .with_repetition(Repetition::OPTIONAL)
                .build()?
        } else {
            Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::String))
                .build()?
        };
        fields.push(Arc::new(field));
    }
    let schema = Type::group_type_builder("results")
        .with_fields(fields)
        .build()?;
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(out, Arc::new(schema), props)?;
    if !table.rows.is_empty() {
        let mut group = writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            let name = &table.columns[index];
            let mut defs = Vec::with_capacity(table.rows.len());
            if is_integer_column(index, name) {
                let mut values = Vec::new();
                for row in &table.rows {
                    match &row[index] {
                        Cell::Int(v) => {
                            values.push(*v);
                            defs.push(1);
                        }
                        _ => defs.push(0),
                    }
                }
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, Some(&defs), None)?;
            } else {
                let mut values = Vec::new();
                for row in &table.rows {
                    match row[index].as_text() {
                        Some(s) => {
                            values.push(ByteArray::from(s.into_bytes()));
                            defs.push(1);
                        }
                        None => defs.push(0),
                    }
                }
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, Some(&defs), None)?;
            }
            column.close()?;
            index += 1;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

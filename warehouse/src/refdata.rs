//! Reference data embedded in the binary: administrative units and holidays
//! (see `warehouse/data/SOURCES.md` for provenance).

use chrono::NaiveDate;

use crate::calendar::DayKind;
use crate::WarehouseError;

const PROVINCES_CSV: &str = include_str!("../data/provinces_2025.csv");
const COMMUNES_CSV: &str = include_str!("../data/admin_units_2025.csv");
const HOLIDAYS_CSV: &str = include_str!("../data/holidays_vn.csv");

/// A province-level unit.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Province {
    pub province_code: String,
    pub province_name: String,
    pub province_kind: String,
}

/// A commune-level unit (xã, phường, đặc khu).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Commune {
    pub province_code: String,
    pub province_name: String,
    pub commune_code: String,
    pub commune_name: String,
    pub commune_kind: String,
}

/// One row of the holiday list.
#[derive(Debug, Clone)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: String,
    pub kind: DayKind,
}

fn read<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<Vec<T>, WarehouseError> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    rdr.deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| WarehouseError::Config(format!("embedded {what}: {e}")))
}

/// The 34 provinces (since 1 July 2025).
pub fn provinces() -> Result<Vec<Province>, WarehouseError> {
    read(PROVINCES_CSV, "provinces")
}

/// The 3,321 communes (since 1 July 2025).
pub fn communes() -> Result<Vec<Commune>, WarehouseError> {
    read(COMMUNES_CSV, "communes")
}

#[derive(serde::Deserialize)]
struct HolidayRow {
    date: NaiveDate,
    name: String,
    kind: String,
}

/// Days off and make-up working days, 2020–2027.
pub fn holidays() -> Result<Vec<Holiday>, WarehouseError> {
    read::<HolidayRow>(HOLIDAYS_CSV, "holidays")?
        .into_iter()
        .map(|r| {
            let kind = match r.kind.as_str() {
                "holiday" => DayKind::Holiday,
                "makeup_workday" => DayKind::MakeupWorkday,
                other => {
                    return Err(WarehouseError::Config(format!(
                        "embedded holidays: kind {other:?}"
                    )))
                }
            };
            Ok(Holiday {
                date: r.date,
                name: r.name,
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_match_the_source_readme() {
        assert_eq!(super::provinces().expect("p").len(), 34);
        let c = super::communes().expect("c");
        assert_eq!(c.len(), 3321);
        assert_eq!(c.iter().filter(|c| c.province_code == "31").count(), 114);
        assert_eq!(super::holidays().expect("h").len(), 119);
    }
}

//! The FOCUS columns vtag reads, found by name in the header. FOCUS 1.0 to 1.2 are accepted:
//! 1.2 renamed `ProviderName` to `ServiceProviderName` (the old name stays readable). Columns vtag
//! does not use (pricing, SKU, commitment and `x_` provider columns) are ignored.

use crate::error::ImportError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    BilledCost,
    EffectiveCost,
    ListCost,
    BillingCurrency,
    BillingAccountId,
    BillingAccountName,
    BillingPeriodStart,
    BillingPeriodEnd,
    ChargePeriodStart,
    ChargePeriodEnd,
    ChargeCategory,
    ChargeDescription,
    Provider,
    ResourceId,
    ResourceName,
    ResourceType,
    RegionId,
    ServiceName,
    SubAccountId,
    Tags,
}

use Column::*;

/// Columns without which a file cannot be imported. `ListCost` and the descriptive columns are
/// optional (an empty `ListCost` counts as zero).
const REQUIRED: [Column; 11] = [
    BilledCost,
    EffectiveCost,
    BillingCurrency,
    BillingAccountId,
    BillingPeriodStart,
    BillingPeriodEnd,
    ChargePeriodStart,
    ChargePeriodEnd,
    ChargeCategory,
    Provider,
    ResourceId,
];

const ALL: [Column; 20] = [
    BilledCost,
    EffectiveCost,
    ListCost,
    BillingCurrency,
    BillingAccountId,
    BillingAccountName,
    BillingPeriodStart,
    BillingPeriodEnd,
    ChargePeriodStart,
    ChargePeriodEnd,
    ChargeCategory,
    ChargeDescription,
    Provider,
    ResourceId,
    ResourceName,
    ResourceType,
    RegionId,
    ServiceName,
    SubAccountId,
    Tags,
];

impl Column {
    /// The FOCUS name (the current one where a version renamed it).
    pub fn name(self) -> &'static str {
        match self {
            BilledCost => "BilledCost",
            EffectiveCost => "EffectiveCost",
            ListCost => "ListCost",
            BillingCurrency => "BillingCurrency",
            BillingAccountId => "BillingAccountId",
            BillingAccountName => "BillingAccountName",
            BillingPeriodStart => "BillingPeriodStart",
            BillingPeriodEnd => "BillingPeriodEnd",
            ChargePeriodStart => "ChargePeriodStart",
            ChargePeriodEnd => "ChargePeriodEnd",
            ChargeCategory => "ChargeCategory",
            ChargeDescription => "ChargeDescription",
            Provider => "ServiceProviderName",
            ResourceId => "ResourceId",
            ResourceName => "ResourceName",
            ResourceType => "ResourceType",
            RegionId => "RegionId",
            ServiceName => "ServiceName",
            SubAccountId => "SubAccountId",
            Tags => "Tags",
        }
    }

    fn accepts(self, header: &str) -> bool {
        header == self.name() || (self == Provider && header == "ProviderName")
    }
}

/// Where each column is in the file's rows.
#[derive(Debug, Clone)]
pub struct Layout {
    index: [Option<usize>; ALL.len()],
    /// The header's spelling of each column, for error messages.
    names: [&'static str; ALL.len()],
}

impl Layout {
    pub fn from_header<'a>(header: impl IntoIterator<Item = &'a str>) -> Result<Self, ImportError> {
        let mut index = [None; ALL.len()];
        let mut names = ALL.map(Column::name);
        for (i, raw) in header.into_iter().enumerate() {
            // Spreadsheet tools prepend a byte-order mark to the first header.
            let name = raw.trim_start_matches('\u{feff}').trim();
            let Some(slot) = ALL.iter().position(|c| c.accepts(name)) else { continue };
            if let Some(first) = index[slot] {
                return Err(ImportError::column(
                    name,
                    "duplicate_column",
                    format!("column {name} appears twice (positions {} and {})", first + 1, i + 1),
                ));
            }
            index[slot] = Some(i);
            if name == "ProviderName" {
                names[slot] = "ProviderName";
            }
        }
        let missing: Vec<&str> = REQUIRED.iter().filter(|c| index[**c as usize].is_none()).map(|c| c.name()).collect();
        if let Some(first) = missing.first() {
            let message = if missing.len() == 1 {
                format!("required FOCUS column {first} is missing")
            } else {
                format!("required FOCUS columns are missing: {}", missing.join(", "))
            };
            let column = if *first == "ServiceProviderName" { "ServiceProviderName (or ProviderName)" } else { first };
            return Err(ImportError::column(column, "required_column", message));
        }
        Ok(Self { index, names })
    }

    pub fn position(&self, column: Column) -> Option<usize> {
        self.index[column as usize]
    }

    pub fn name(&self, column: Column) -> &'static str {
        self.names[column as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOCUS_1_0: &str = "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodEnd,BillingPeriodStart,ChargeCategory,ChargePeriodEnd,ChargePeriodStart,EffectiveCost,ListCost,ProviderName,ResourceId,Tags,x_Custom";

    #[test]
    fn finds_columns_by_name_in_any_order() {
        let layout = Layout::from_header(FOCUS_1_0.split(',')).unwrap();
        assert_eq!(layout.position(BilledCost), Some(0));
        assert_eq!(layout.position(Provider), Some(10));
        assert_eq!(layout.name(Provider), "ProviderName");
        assert_eq!(layout.position(RegionId), None);
    }

    #[test]
    fn accepts_the_1_2_provider_column_and_a_byte_order_mark() {
        let header = format!("\u{feff}{}", FOCUS_1_0.replace("ProviderName", "ServiceProviderName"));
        let layout = Layout::from_header(header.split(',')).unwrap();
        assert_eq!(layout.position(BilledCost), Some(0));
        assert_eq!(layout.name(Provider), "ServiceProviderName");
    }

    #[test]
    fn names_every_missing_required_column() {
        let header = FOCUS_1_0.replace("EffectiveCost,", "").replace("ChargeCategory,", "");
        let err = Layout::from_header(header.split(',')).unwrap_err();
        assert_eq!(err.rule, "required_column");
        assert_eq!(err.column.as_deref(), Some("EffectiveCost"));
        assert!(err.message.contains("EffectiveCost, ChargeCategory"), "{}", err.message);
    }

    #[test]
    fn refuses_a_duplicate_column() {
        let header = format!("{FOCUS_1_0},BilledCost");
        let err = Layout::from_header(header.split(',')).unwrap_err();
        assert_eq!((err.rule, err.column.as_deref()), ("duplicate_column", Some("BilledCost")));
    }
}

//! The keys of the seed taxonomy (`TagSchema::seed_default()` in vtag-domain) that the truth uses.
//! Typed, so the generator never compares key strings on its hot path.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Key {
    Environment,
    CostCenter,
    Owner,
    Project,
    Team,
    Application,
    BusinessUnit,
    DataClassification,
    Backup,
    AutoStop,
    Compliance,
}

impl Key {
    /// The canonical key, as the seed schema spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::CostCenter => "cost-center",
            Self::Owner => "owner",
            Self::Project => "project",
            Self::Team => "team",
            Self::Application => "application",
            Self::BusinessUnit => "business-unit",
            Self::DataClassification => "data-classification",
            Self::Backup => "backup",
            Self::AutoStop => "auto-stop",
            Self::Compliance => "compliance",
        }
    }
}

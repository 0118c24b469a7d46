//! Resource names the way teams name things: application, role, environment and a number, in a
//! few orders, sometimes without the environment, bent to each cloud's naming rules. A name that
//! carries an environment always carries the true one.

use crate::clouds::Shape;
use crate::org::Environment;
use crate::prng::Rng;

pub(crate) struct NameParts<'a> {
    pub app: &'a str,
    pub role: &'a str,
    pub env: Environment,
    /// Distinct per resource: names (and so the ids built from them) never collide.
    pub serial: u64,
    /// The company, for globally unique names (buckets).
    pub org: &'a str,
}

pub(crate) fn name(rng: &mut Rng, shape: Shape, parts: &NameParts) -> String {
    let NameParts { app, role, serial, org, .. } = parts;
    let env = parts.env.short();
    match shape {
        // bucket names share one global namespace, so companies prefix them
        Shape::S3Bucket | Shape::GcsBucket if rng.chance(0.15) => format!("{org}-{app}-{role}-{serial}"),
        Shape::S3Bucket | Shape::GcsBucket => format!("{org}-{app}-{role}-{env}-{serial}"),
        // 3–24 lower-case letters and digits, nothing else
        Shape::StorageAccount => format!("st{app}{env}{serial}"),
        // letters, digits and underscores
        Shape::BigQueryDataset => format!("{app}_{role}_{env}_{serial}"),
        _ => match rng.below(20) {
            0..=10 => format!("{app}-{role}-{env}-{serial:03}"),
            11..=13 => format!("{app}-{env}-{serial:03}"),
            14..=15 => format!("{env}-{app}-{role}-{serial:03}"),
            _ => format!("{app}-{role}-{serial:03}"),
        },
    }
}

//! The three clouds: which resource kinds each has and how common they are, their regions, the
//! shape of their resource ids, and the metadata a collector reports for each kind.

use std::collections::BTreeMap;

/// A cloud provider, spelled as the observe endpoint expects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    Aws,
    Azure,
    Gcp,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Azure => "azure",
            Self::Gcp => "gcp",
        }
    }

    /// The resource kinds of this cloud with their relative frequency in a typical estate
    /// (instances and their disks dominate; clusters are few).
    pub(crate) fn shapes(self) -> &'static [(Shape, u32)] {
        use Shape::*;
        match self {
            Self::Aws => &[
                (Ec2Instance, 36),
                (EbsVolume, 14),
                (S3Bucket, 14),
                (RdsInstance, 8),
                (LambdaFunction, 14),
                (DynamoTable, 6),
                (EksCluster, 2),
                (LoadBalancer, 6),
            ],
            Self::Azure => &[
                (VirtualMachine, 36),
                (ManagedDisk, 16),
                (StorageAccount, 16),
                (SqlDatabase, 10),
                (AksCluster, 3),
                (AppService, 19),
            ],
            Self::Gcp => &[
                (ComputeInstance, 36),
                (PersistentDisk, 14),
                (GcsBucket, 14),
                (CloudSql, 8),
                (BigQueryDataset, 10),
                (GkeCluster, 3),
                (CloudFunction, 15),
            ],
        }
    }

    pub(crate) fn regions(self) -> &'static [Region] {
        const fn r(name: &'static str, weight: u32, zones: &'static [&'static str]) -> Region {
            Region { name, weight, zones }
        }
        const AWS: &[Region] = &[
            r("us-east-1", 5, &["a", "b", "c", "d"]),
            r("us-west-2", 3, &["a", "b", "c"]),
            r("eu-west-1", 3, &["a", "b", "c"]),
            r("eu-central-1", 2, &["a", "b", "c"]),
            r("us-east-2", 1, &["a", "b", "c"]),
            r("ap-southeast-2", 1, &["a", "b", "c"]),
        ];
        // Azure's ids do not carry zones, and its VMs mostly run without one.
        const AZURE: &[Region] = &[
            r("westeurope", 4, &[]),
            r("northeurope", 2, &[]),
            r("eastus", 3, &[]),
            r("eastus2", 2, &[]),
            r("westus2", 1, &[]),
            r("uksouth", 1, &[]),
        ];
        const GCP: &[Region] = &[
            r("europe-west1", 3, &["b", "c", "d"]),
            r("us-central1", 4, &["a", "b", "c", "f"]),
            r("us-east1", 2, &["b", "c", "d"]),
            r("europe-west4", 2, &["a", "b", "c"]),
            r("asia-southeast1", 1, &["a", "b", "c"]),
        ];
        match self {
            Self::Aws => AWS,
            Self::Azure => AZURE,
            Self::Gcp => GCP,
        }
    }
}

pub(crate) struct Region {
    pub name: &'static str,
    pub weight: u32,
    /// Zone suffixes: `us-east-1` + `a`, `europe-west1` + `-b`.
    pub zones: &'static [&'static str],
}

/// What a resource is, which decides which truth keys apply to it (data stores get a
/// data-classification, compute an auto-stop schedule, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Compute,
    Disk,
    ObjectStore,
    Database,
    Function,
    Cluster,
    LoadBalancer,
}

/// One resource kind of one cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Ec2Instance,
    EbsVolume,
    S3Bucket,
    RdsInstance,
    LambdaFunction,
    DynamoTable,
    EksCluster,
    LoadBalancer,
    VirtualMachine,
    ManagedDisk,
    StorageAccount,
    SqlDatabase,
    AksCluster,
    AppService,
    ComputeInstance,
    PersistentDisk,
    GcsBucket,
    CloudSql,
    BigQueryDataset,
    GkeCluster,
    CloudFunction,
}

/// Where a resource lives, as far as its id is concerned.
pub(crate) struct Site<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// The full zone name (`us-east-1b`, `europe-west1-c`); empty where the cloud has none.
    pub zone: &'a str,
    /// `<app>-<env>`: Azure resource groups and SQL servers are named after it.
    pub group: &'a str,
}

impl Shape {
    pub fn resource_type(self) -> &'static str {
        use Shape::*;
        match self {
            Ec2Instance => "ec2",
            EbsVolume => "ebs-volume",
            S3Bucket => "s3",
            RdsInstance => "rds",
            LambdaFunction => "lambda",
            DynamoTable => "dynamodb",
            EksCluster => "eks",
            LoadBalancer => "elb",
            VirtualMachine => "vm",
            ManagedDisk => "managed-disk",
            StorageAccount => "storage-account",
            SqlDatabase => "sql-database",
            AksCluster => "aks",
            AppService => "app-service",
            ComputeInstance => "compute-instance",
            PersistentDisk => "persistent-disk",
            GcsBucket => "gcs-bucket",
            CloudSql => "cloud-sql",
            BigQueryDataset => "bigquery-dataset",
            GkeCluster => "gke-cluster",
            CloudFunction => "cloud-function",
        }
    }

    pub fn class(self) -> Class {
        use Shape::*;
        match self {
            Ec2Instance | VirtualMachine | ComputeInstance => Class::Compute,
            EbsVolume | ManagedDisk | PersistentDisk => Class::Disk,
            S3Bucket | StorageAccount | GcsBucket | BigQueryDataset => Class::ObjectStore,
            RdsInstance | DynamoTable | SqlDatabase | CloudSql => Class::Database,
            LambdaFunction | AppService | CloudFunction => Class::Function,
            EksCluster | AksCluster | GkeCluster => Class::Cluster,
            Self::LoadBalancer => Class::LoadBalancer,
        }
    }

    /// The second word of a name (`payments-api-prod-007`). None of them looks like an
    /// environment, so an environment found in a name is always the real one.
    pub fn roles(self) -> &'static [&'static str] {
        match self.class() {
            Class::Compute => &["server", "api", "worker", "app", "batch"],
            Class::Disk => &["data", "root", "vol"],
            Class::ObjectStore if self == Self::BigQueryDataset => &["events", "reporting", "marts"],
            Class::ObjectStore => &["assets", "logs", "exports", "backups", "raw"],
            Class::Database if self == Self::DynamoTable => &["sessions", "events", "state"],
            Class::Database => &["db", "pg", "mysql"],
            Class::Function => &["handler", "cron", "webhook", "api"],
            Class::Cluster => &["k8s", "cluster"],
            Class::LoadBalancer => &["alb", "lb"],
        }
    }

    /// Zonal resources report their zone as their region, as the clouds' own inventories do.
    pub fn zonal(self) -> bool {
        matches!(self, Self::ComputeInstance | Self::PersistentDisk)
    }

    /// AWS instances and volumes have no name of their own, only a `Name` tag (or none).
    pub fn named_by_tag(self) -> bool {
        matches!(self, Self::Ec2Instance | Self::EbsVolume)
    }

    /// The cloud's short id of a resource that has one besides its name (`i-0…`, `vol-0…`).
    /// `unique` is distinct per resource, so ids never collide.
    pub fn short_id(self, unique: u64) -> Option<String> {
        match self {
            Self::Ec2Instance => Some(format!("i-0{unique:016x}")),
            Self::EbsVolume => Some(format!("vol-0{unique:016x}")),
            _ => None,
        }
    }

    /// The resource id as the cloud spells it: an ARN, an Azure resource id, or a full GCP
    /// resource name (the Cloud Asset Inventory form).
    pub fn cloud_id(self, site: &Site, name: &str, unique: u64) -> String {
        use Shape::*;
        let Site { account, region, zone, group } = site;
        let short = || self.short_id(unique).unwrap_or_default();
        let azure = |provider: &str| format!("/subscriptions/{account}/resourceGroups/rg-{group}/providers/{provider}/{name}");
        match self {
            Ec2Instance => format!("arn:aws:ec2:{region}:{account}:instance/{}", short()),
            EbsVolume => format!("arn:aws:ec2:{region}:{account}:volume/{}", short()),
            // bucket names are global: S3 ARNs carry neither region nor account
            S3Bucket => format!("arn:aws:s3:::{name}"),
            RdsInstance => format!("arn:aws:rds:{region}:{account}:db:{name}"),
            LambdaFunction => format!("arn:aws:lambda:{region}:{account}:function:{name}"),
            DynamoTable => format!("arn:aws:dynamodb:{region}:{account}:table/{name}"),
            EksCluster => format!("arn:aws:eks:{region}:{account}:cluster/{name}"),
            LoadBalancer => {
                format!("arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/{unique:016x}")
            }
            VirtualMachine => azure("Microsoft.Compute/virtualMachines"),
            ManagedDisk => azure("Microsoft.Compute/disks"),
            StorageAccount => azure("Microsoft.Storage/storageAccounts"),
            SqlDatabase => azure(&format!("Microsoft.Sql/servers/sql-{group}/databases")),
            AksCluster => azure("Microsoft.ContainerService/managedClusters"),
            AppService => azure("Microsoft.Web/sites"),
            ComputeInstance => format!("//compute.googleapis.com/projects/{account}/zones/{zone}/instances/{name}"),
            PersistentDisk => format!("//compute.googleapis.com/projects/{account}/zones/{zone}/disks/{name}"),
            GcsBucket => format!("//storage.googleapis.com/projects/_/buckets/{name}"),
            CloudSql => format!("//sqladmin.googleapis.com/projects/{account}/instances/{name}"),
            BigQueryDataset => format!("//bigquery.googleapis.com/projects/{account}/datasets/{name}"),
            GkeCluster => format!("//container.googleapis.com/projects/{account}/locations/{region}/clusters/{name}"),
            CloudFunction => {
                format!("//cloudfunctions.googleapis.com/projects/{account}/locations/{region}/functions/{name}")
            }
        }
    }

    /// Attributes a collector reports for this kind, each with the values it takes (repeats
    /// weight the common ones).
    fn attributes(self) -> &'static [(&'static str, &'static [&'static str])] {
        use Shape::*;
        match self {
            Ec2Instance => &[
                ("instance_type", &["t3.medium", "m5.large", "m5.xlarge", "c6i.large", "r6g.xlarge", "m6i.2xlarge"]),
                ("state", &["running", "running", "running", "running", "stopped"]),
                ("platform", &["linux", "linux", "linux", "windows"]),
            ],
            EbsVolume => &[
                ("volume_type", &["gp3", "gp3", "gp2", "io2", "st1"]),
                ("size_gb", &["8", "20", "50", "100", "500", "1000"]),
                ("state", &["in-use", "in-use", "in-use", "available"]),
            ],
            S3Bucket => &[
                ("versioning", &["Enabled", "Suspended", "Disabled"]),
                ("storage_class", &["STANDARD", "STANDARD", "INTELLIGENT_TIERING", "GLACIER"]),
            ],
            RdsInstance => &[
                ("engine", &["postgres", "postgres", "aurora-postgresql", "mysql", "aurora-mysql"]),
                ("instance_class", &["db.t4g.medium", "db.r6g.large", "db.r6g.xlarge", "db.m6i.large"]),
                ("multi_az", &["true", "false"]),
            ],
            LambdaFunction => &[
                ("runtime", &["python3.12", "nodejs20.x", "java21", "go1.x", "provided.al2023"]),
                ("memory_mb", &["128", "256", "512", "1024", "2048"]),
            ],
            DynamoTable => &[("billing_mode", &["PAY_PER_REQUEST", "PROVISIONED"])],
            EksCluster | AksCluster | GkeCluster => &[
                ("kubernetes_version", &["1.28", "1.29", "1.30", "1.31"]),
                ("node_count", &["3", "4", "6", "9", "12"]),
            ],
            LoadBalancer => &[("scheme", &["internet-facing", "internal"]), ("type", &["application", "network"])],
            VirtualMachine => &[
                ("vm_size", &["Standard_B2s", "Standard_D2s_v5", "Standard_D4s_v5", "Standard_E4s_v5"]),
                ("os", &["Linux", "Linux", "Linux", "Windows"]),
                ("power_state", &["running", "running", "running", "deallocated"]),
            ],
            ManagedDisk => &[
                ("sku", &["Premium_LRS", "StandardSSD_LRS", "Standard_LRS"]),
                ("size_gb", &["32", "64", "128", "256", "1024"]),
            ],
            StorageAccount => &[
                ("sku", &["Standard_LRS", "Standard_GRS", "Standard_ZRS", "Premium_LRS"]),
                ("access_tier", &["Hot", "Hot", "Cool"]),
            ],
            SqlDatabase => &[("sku", &["GP_Gen5_2", "GP_Gen5_4", "BC_Gen5_4", "S1", "P2"])],
            AppService => &[("plan_sku", &["B1", "P1v3", "P2v3", "S1"])],
            ComputeInstance => &[
                ("machine_type", &["e2-medium", "e2-standard-4", "n2-standard-4", "n2-standard-8", "c3-standard-4"]),
                ("status", &["RUNNING", "RUNNING", "RUNNING", "TERMINATED"]),
            ],
            PersistentDisk => &[
                ("disk_type", &["pd-balanced", "pd-balanced", "pd-ssd", "pd-standard"]),
                ("size_gb", &["10", "50", "100", "500"]),
            ],
            GcsBucket => &[("storage_class", &["STANDARD", "STANDARD", "NEARLINE", "COLDLINE"])],
            CloudSql => &[
                ("database_version", &["POSTGRES_15", "POSTGRES_16", "MYSQL_8_0"]),
                ("tier", &["db-custom-2-8192", "db-custom-4-16384", "db-f1-micro"]),
            ],
            BigQueryDataset => &[("default_table_expiration_days", &["30", "90", "365", "never"])],
            CloudFunction => &[("runtime", &["python312", "nodejs20", "go122"]), ("memory_mb", &["256", "512", "1024"])],
        }
    }

    pub fn metadata(self, rng: &mut crate::prng::Rng) -> BTreeMap<String, String> {
        self.attributes().iter().map(|(key, values)| ((*key).to_owned(), (*rng.pick(values)).to_owned())).collect()
    }
}

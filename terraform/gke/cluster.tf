locals {
  zone = "${var.region}-${var.zone_suffix}"
}

# The nodes' own identity: logs and metrics only (not the Compute default account).
resource "google_service_account" "nodes" {
  account_id   = "${var.cluster_name}-nodes"
  display_name = "GKE nodes of ${var.cluster_name}"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/artifactregistry.reader",
  ])
  project = var.project
  role    = each.value
  member  = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "main" {
  # checkov:skip=CKV_GCP_66: Binary Authorization needs an attestation pipeline for every image; out of scope for an example cluster
  # checkov:skip=CKV_GCP_65: RBAC through Google Groups needs a Workspace/Cloud Identity domain the example cannot assume
  # checkov:skip=CKV_GCP_69: the default node pool is removed; both node pools below run the GKE metadata server (workload_metadata_config GKE_METADATA)
  name     = var.cluster_name
  location = local.zone

  network    = google_compute_network.main.id
  subnetwork = google_compute_subnetwork.nodes.id

  # Node pools are managed below.
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = false

  networking_mode = "VPC_NATIVE"
  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
    stack_type                    = var.ipv6 ? "IPV4_IPV6" : "IPV4"
  }
  # Dual-stack clusters need Dataplane V2.
  datapath_provider = var.ipv6 ? "ADVANCED_DATAPATH" : null

  # Nodes are private by default; the public pool opts out (cluster.tf, node pool "public").
  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = "172.16.0.0/28"
  }
  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_cidrs
      content {
        cidr_block   = cidr_blocks.value
        display_name = "allowed-${cidr_blocks.key}"
      }
    }
  }

  # pinip's ServiceAccount acts as a Google service account (iam.tf).
  workload_identity_config {
    workload_pool = "${var.project}.svc.id.goog"
  }

  release_channel {
    channel = "REGULAR"
  }
  network_policy {
    enabled = var.ipv6 ? false : true
  }
  addons_config {
    network_policy_config {
      disabled = var.ipv6
    }
  }
  enable_intranode_visibility = true
  enable_shielded_nodes       = true
  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }
  logging_service    = "logging.googleapis.com/kubernetes"
  monitoring_service = "monitoring.googleapis.com/kubernetes"
  resource_labels    = { "pinip-example" = var.cluster_name }
}

locals {
  node_config_common = {
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
  }
}

# The nodes whose egress partners whitelist: external addresses (pinip swaps the
# ephemeral one for a reserved one), and the label pinip's DaemonSet selects.
resource "google_container_node_pool" "public" {
  name     = "public"
  cluster  = google_container_cluster.main.id
  location = local.zone

  initial_node_count = var.public_nodes
  autoscaling {
    min_node_count = 1
    max_node_count = var.public_nodes_max
  }
  management {
    auto_repair  = true
    auto_upgrade = true
  }

  network_config {
    # The one pool with external addresses: that is what pinip pins.
    enable_private_nodes = false
  }

  node_config {
    machine_type    = var.machine_type
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = 30
    service_account = local.node_config_common.service_account
    oauth_scopes    = local.node_config_common.oauth_scopes
    labels          = { "pinip.dev/pool" = "public" }
    # network.tf's firewall rules for the public pool select this tag.
    tags = ["${var.cluster_name}-public"]

    dynamic "taint" {
      for_each = var.taint_public_nodes ? [1] : []
      content {
        key    = "pinip.dev/not-ready"
        value  = "true"
        effect = "NO_SCHEDULE"
      }
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

# Everything else: private nodes, no pinip label, egress through Cloud NAT.
resource "google_container_node_pool" "private" {
  name       = "private"
  cluster    = google_container_cluster.main.id
  location   = local.zone
  node_count = var.private_nodes

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.machine_type
    image_type      = "COS_CONTAINERD"
    disk_type       = "pd-balanced"
    disk_size_gb    = 30
    service_account = local.node_config_common.service_account
    oauth_scopes    = local.node_config_common.oauth_scopes

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
    metadata = {
      disable-legacy-endpoints = "true"
    }
  }
}

locals {
  kubeconfig = yamlencode({
    apiVersion      = "v1"
    kind            = "Config"
    current-context = var.cluster_name
    clusters = [{
      name = var.cluster_name
      cluster = {
        server                     = "https://${google_container_cluster.main.endpoint}"
        certificate-authority-data = google_container_cluster.main.master_auth[0].cluster_ca_certificate
      }
    }]
    users = [{
      name = var.cluster_name
      user = { token = data.google_client_config.current.access_token }
    }]
    contexts = [{
      name    = var.cluster_name
      context = { cluster = var.cluster_name, user = var.cluster_name }
    }]
  })
}

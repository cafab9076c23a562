resource "google_compute_network" "main" {
  name                    = var.cluster_name
  auto_create_subnetworks = false
}

# Nothing from outside reaches the nodes, although the public pool has external
# addresses: pinip's addresses are for egress. A node with a public address is also a
# router to its pods and answers on every NodePort and hostPort, so this denial is what
# keeps those closed. (GKE adds its own rules for the control plane and node-to-node
# traffic at higher priorities, and `k8s-fw-*` allow rules for the NodePorts of every
# Service of type LoadBalancer: docs/deploy.md, "What a public address exposes".)
resource "google_compute_firewall" "deny_ingress" {
  name      = "${var.cluster_name}-deny-ingress"
  network   = google_compute_network.main.id
  direction = "INGRESS"
  priority  = 65000

  deny {
    protocol = "all"
  }
  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "deny_ingress_ipv6" {
  count     = var.ipv6 ? 1 : 0
  name      = "${var.cluster_name}-deny-ingress-v6"
  network   = google_compute_network.main.id
  direction = "INGRESS"
  priority  = 65000

  deny {
    protocol = "all"
  }
  source_ranges = ["::/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# What the public pool accepts from outside, and nothing else: var.public_inbound.
resource "google_compute_firewall" "public_inbound" {
  for_each  = { for rule in var.public_inbound : rule.name => rule }
  name      = "${var.cluster_name}-public-${each.key}"
  network   = google_compute_network.main.id
  direction = "INGRESS"
  priority  = 1000

  allow {
    protocol = each.value.protocol
    ports    = each.value.ports
  }
  source_ranges = each.value.source_ranges
  target_tags   = ["${var.cluster_name}-public"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# One subnet: nodes, plus secondary ranges for pods and services (VPC-native). Dual-stack
# with external IPv6 when var.ipv6, so nodes can hold a static external IPv6 address.
resource "google_compute_subnetwork" "nodes" {
  name          = "${var.cluster_name}-nodes"
  region        = var.region
  network       = google_compute_network.main.id
  ip_cidr_range = "10.10.0.0/20"

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = "10.20.0.0/16"
  }
  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = "10.30.0.0/20"
  }

  stack_type       = var.ipv6 ? "IPV4_IPV6" : "IPV4_ONLY"
  ipv6_access_type = var.ipv6 ? "EXTERNAL" : null

  # Google APIs stay reachable from nodes while pinip swaps their external address.
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# Egress for the private pool (its nodes have no external address).
resource "google_compute_router" "nat" {
  name    = "${var.cluster_name}-nat"
  region  = var.region
  network = google_compute_network.main.id
}

resource "google_compute_router_nat" "nat" {
  name                               = "${var.cluster_name}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

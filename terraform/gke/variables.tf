variable "project" {
  description = "GCP project of the cluster and its address pool."
  type        = string
}

variable "region" {
  description = "GCP region of the cluster and its address pool (static addresses are regional)."
  type        = string
  default     = "europe-west1"
}

variable "zone_suffix" {
  description = "Zone of the (zonal, cheaper) cluster, as a suffix of the region."
  type        = string
  default     = "b"
}

variable "cluster_name" {
  description = "GKE cluster name; also pinip's CLUSTER_NAME and a label on every address of the pool."
  type        = string
  default     = "pinip-demo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,26}$", var.cluster_name))
    error_message = "cluster_name: 1-27 lowercase letters, digits and '-', starting with a letter."
  }
}

variable "pool_size" {
  description = "Number of static addresses to reserve for the public node pool (what partners whitelist). Keep it >= public_nodes_max, or the extra nodes wait for an address."
  type        = number
  default     = 3

  validation {
    condition     = var.pool_size >= 1 && var.pool_size <= 20
    error_message = "pool_size: 1 to 20 (check the STATIC_ADDRESSES quota of the region for more)."
  }
}

variable "public_nodes" {
  description = "Initial size of the public node pool (the nodes that get a static address)."
  type        = number
  default     = 2
}

variable "public_nodes_max" {
  description = "Maximum size of the public node pool."
  type        = number
  default     = 3
}

variable "private_nodes" {
  description = "Size of the private node pool (no external address, egress through Cloud NAT)."
  type        = number
  default     = 1
}

variable "machine_type" {
  description = "Machine type of both node pools."
  type        = string
  default     = "e2-small"
}

variable "ipv6" {
  description = "Dual-stack subnet and a static external IPv6 address (/96) per public node instead of an IPv4 one (applies deploy/overlays/gcp-ipv6)."
  type        = bool
  default     = false
}

variable "taint_public_nodes" {
  description = "Start public nodes with the taint pinip.dev/not-ready:NoSchedule, which pinip lifts once the node's address is attached."
  type        = bool
  default     = true
}

variable "master_authorized_cidrs" {
  description = "CIDRs allowed to reach the GKE API endpoint (where terraform and kubectl run)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "pinip_image" {
  description = "The pinip image (built with the repository's Dockerfile)."
  type        = string
  default     = "ghcr.io/pinip/pinip:0.1.0"
}

variable "public_inbound" {
  description = "Inbound traffic the public pool accepts from outside (firewall allow rules; everything else is denied by deny_ingress). A node with a public address answers on every NodePort and hostPort of the cluster: list only what must be reachable. Default: nothing."
  type = list(object({
    name          = string
    protocol      = string
    ports         = list(string)
    source_ranges = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.public_inbound : !contains(rule.source_ranges, "0.0.0.0/0") || length(rule.ports) > 0])
    error_message = "An allow rule from 0.0.0.0/0 must name its ports."
  }
}

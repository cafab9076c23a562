variable "tenancy_ocid" {
  description = "OCID of the tenancy (the IAM user, group and policy of pinip live there)."
  type        = string
}

variable "compartment_ocid" {
  description = "OCID of the compartment of the cluster, its nodes and the reserved public IPs (pinip's PROJECT)."
  type        = string
}

variable "region" {
  description = "OCI region of the cluster and its reserved public IPs (reserved public IPs are regional)."
  type        = string
  default     = "us-ashburn-1"
}

variable "cluster_name" {
  description = "OKE cluster name; also pinip's CLUSTER_NAME and the pinip-pool tag of every address of the pool."
  type        = string
  default     = "pinip-demo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,26}$", var.cluster_name))
    error_message = "cluster_name: 1-27 lowercase letters, digits and '-', starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes version of the cluster and its node pool (one OKE offers in the region)."
  type        = string
  default     = "v1.33.1"
}

variable "pool_size" {
  description = "Number of reserved public IPs for the public node pool (what partners whitelist). Keep it >= public_nodes, or the extra nodes wait for an address."
  type        = number
  default     = 3

  validation {
    condition     = var.pool_size >= 1 && var.pool_size <= 50
    error_message = "pool_size: 1 to 50 (check the reserved public IP limit of the tenancy for more)."
  }
}

variable "public_nodes" {
  description = "Size of the public node pool (the nodes that get a reserved public IP)."
  type        = number
  default     = 2
}

variable "node_shape" {
  description = "Shape of the public node pool (flexible shapes take node_ocpus and node_memory_gbs)."
  type        = string
  default     = "VM.Standard.E4.Flex"
}

variable "node_ocpus" {
  description = "OCPUs per node (flexible shapes)."
  type        = number
  default     = 1
}

variable "node_memory_gbs" {
  description = "Memory per node in GB (flexible shapes)."
  type        = number
  default     = 8
}

variable "ipv6" {
  description = "Must stay false: OCI has no reserved public IPv6 addresses for pinip to pin (docs/oci.md)."
  type        = bool
  default     = false

  validation {
    condition     = !var.ipv6
    error_message = "ipv6: OCI has no reserved public IPv6 addresses; pinip pins IPv4 on OCI."
  }
}

variable "api_authorized_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API endpoint (where terraform and kubectl run)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "pinip_image" {
  description = "The pinip image (built with the repository's Dockerfile)."
  type        = string
  default     = "ghcr.io/pinip/pinip:0.1.0"
}

variable "public_inbound" {
  description = "Inbound TCP traffic the public node subnet accepts from outside (security list rules; everything else from outside the VCN is dropped). A node with a public address answers on every NodePort and hostPort of the cluster: list only what must be reachable. Default: nothing."
  type = list(object({
    port   = number
    source = string
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.public_inbound : rule.port >= 1 && rule.port <= 65535])
    error_message = "public_inbound: each rule names one TCP port (1-65535) and its source CIDR."
  }
}

variable "auth" {
  description = "How pinip authenticates: api_key (an API-key-only user in a group, its key in the Secret pinip-oci-api-key), instance_principal (the nodes' dynamic group; no user, key or Secret) or workload_identity (pinip's service account; makes the cluster an enhanced one; no user, key or Secret)."
  type        = string
  default     = "api_key"

  validation {
    condition     = contains(["api_key", "instance_principal", "workload_identity"], var.auth)
    error_message = "auth: api_key, instance_principal or workload_identity."
  }
}

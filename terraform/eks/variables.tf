variable "region" {
  description = "AWS region of the cluster and its address pool."
  type        = string
  default     = "eu-west-1"
}

variable "zone_suffixes" {
  description = "Availability zones of the subnets, as suffixes of the region (two zones: a public and a private subnet in each)."
  type        = list(string)
  default     = ["a", "b"]

  validation {
    condition     = length(var.zone_suffixes) == 2
    error_message = "zone_suffixes: exactly two zones (the subnet layout has two of each kind)."
  }
}

variable "cluster_name" {
  description = "EKS cluster name; also pinip's CLUSTER_NAME and a tag on every address of the pool."
  type        = string
  default     = "pinip-demo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}$", var.cluster_name))
    error_message = "cluster_name: 1-39 lowercase letters, digits and '-', starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "pool_size" {
  description = "Number of Elastic IPs to reserve for the public node pool (what partners whitelist). Keep it >= public_nodes_max, or the extra nodes wait for an address."
  type        = number
  default     = 3

  validation {
    condition     = var.pool_size >= 1 && var.pool_size <= 20
    error_message = "pool_size: 1 to 20 (the default Elastic IP quota is 5 per region; raise it first for more)."
  }
}

variable "public_nodes" {
  description = "Desired size of the public node pool (the nodes that get a static address)."
  type        = number
  default     = 2
}

variable "public_nodes_max" {
  description = "Maximum size of the public node pool."
  type        = number
  default     = 3
}

variable "private_nodes" {
  description = "Desired size of the private node pool (no static address, egress through the NAT gateway)."
  type        = number
  default     = 1
}

variable "instance_types" {
  description = "Instance types of both node pools."
  type        = list(string)
  default     = ["t3.small"]
}

variable "ipv6" {
  description = "Give each public node a static IPv6 address (from a /124 of its subnet) instead of an Elastic IP. The cluster stays IPv4: only hostNetwork pods egress from the node's IPv6 address."
  type        = bool
  default     = false
}

variable "taint_public_nodes" {
  description = "Start public nodes with the taint pinip.dev/not-ready:NoSchedule, which pinip lifts once the node's address is attached, so no workload runs there before."
  type        = bool
  default     = true
}

variable "api_allowed_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint (where terraform and kubectl run)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "pinip_image" {
  description = "The pinip image (built with the repository's Dockerfile)."
  type        = string
  default     = "ghcr.io/pinip/pinip:0.1.0"
}

variable "tags" {
  description = "Tags added to every AWS resource."
  type        = map(string)
  default     = {}
}

variable "public_inbound" {
  description = "Inbound traffic the public pool accepts from outside the VPC (security group rules; a security group admits nothing else). A node with a public address answers on every NodePort and hostPort of the cluster: list only what must be reachable. Default: nothing."
  type = list(object({
    description = string
    protocol    = string
    from_port   = number
    to_port     = number
    cidr_ipv4   = string
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.public_inbound : rule.protocol != "-1"])
    error_message = "Name a protocol and ports (tcp/udp/icmp); \"all traffic\" would open every NodePort."
  }
}

# The pool: Elastic IPs tagged for pinip's FILTER (Name=tag:kubeip,Values=reserved plus
# this cluster's tag, so two clusters in one account never share a pool by accident).
# They stay allocated when nodes come and go; that is the point (partners whitelist them).
resource "aws_eip" "pool" {
  # checkov:skip=CKV2_AWS_19: reserved on purpose and unattached at creation; pinip attaches each one to a node of the public pool
  count  = var.ipv6 ? 0 : var.pool_size
  domain = "vpc"

  tags = {
    Name            = "${var.cluster_name}-pinip-${count.index}"
    kubeip          = "reserved"
    "pinip-cluster" = var.cluster_name
  }
}

locals {
  # IPv6: EC2 has no reserved IPv6 object, so the pool is a /124 (16 addresses) of each
  # public subnet's /64, clear of the addresses AWS reserves at the start of the block.
  ipv6_pool = var.ipv6 ? [for block in module.vpc.public_subnets_ipv6_cidr_blocks : cidrsubnet(block, 60, 1)] : []
}

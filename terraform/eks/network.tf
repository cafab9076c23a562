# Exactly the zones asked for (and only if they are available), so a zone AWS adds later
# never moves a subnet.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = [for suffix in var.zone_suffixes : "${var.region}${suffix}"]
  }
}

locals {
  azs = sort(data.aws_availability_zones.selected.names)
}

# Public subnets for the public node pool (their egress leaves through the node's own
# public address: the Elastic IP once pinip has attached it), private subnets behind one
# NAT gateway for the private pool and the control plane's ENIs.
module "vpc" {
  # checkov:skip=CKV_TF_1: a Terraform Registry module pinned to a version range; the registry serves immutable versions; a git commit pin would bypass the registry
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 5.21"

  name = var.cluster_name
  cidr = "10.0.0.0/16"
  azs  = local.azs

  public_subnets  = ["10.0.0.0/20", "10.0.16.0/20"]
  private_subnets = ["10.0.128.0/20", "10.0.144.0/20"]

  # A public node needs a public address to join the cluster before pinip runs; AWS
  # releases this ephemeral one when pinip associates the Elastic IP.
  map_public_ip_on_launch = true
  enable_nat_gateway      = true
  single_nat_gateway      = true
  enable_dns_hostnames    = true

  enable_ipv6                                    = var.ipv6
  public_subnet_ipv6_prefixes                    = var.ipv6 ? [0, 1] : []
  public_subnet_assign_ipv6_address_on_creation  = var.ipv6
  private_subnet_ipv6_prefixes                   = var.ipv6 ? [2, 3] : []
  private_subnet_assign_ipv6_address_on_creation = var.ipv6

  public_subnet_tags  = { "kubernetes.io/role/elb" = "1" }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = "1" }
}

# The public pool's nodes have public addresses, so each is also a router to its pods
# and answers on every NodePort and hostPort of the cluster. Security groups admit
# nothing they do not list: the module's node group allows only the control plane and
# node-to-node traffic, and this group adds exactly what var.public_inbound lists.
# (Service controllers add rules of their own for Services of type LoadBalancer:
# docs/deploy.md, "What a public address exposes".)
resource "aws_security_group" "public_inbound" {
  # checkov:skip=CKV2_AWS_5: attached to the public node group through module.eks (eks_managed_node_groups.public.vpc_security_group_ids), a registry module checkov does not download
  name_prefix = "${var.cluster_name}-public-inbound-"
  description = "Inbound traffic the public node pool accepts from outside (var.public_inbound)"
  vpc_id      = module.vpc.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "public_inbound" {
  for_each          = { for rule in var.public_inbound : "${rule.protocol}-${rule.from_port}-${rule.to_port}-${rule.cidr_ipv4}" => rule }
  security_group_id = aws_security_group.public_inbound.id
  description       = each.value.description
  ip_protocol       = each.value.protocol
  from_port         = each.value.from_port
  to_port           = each.value.to_port
  cidr_ipv4         = each.value.cidr_ipv4
}

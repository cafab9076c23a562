module "eks" {
  # checkov:skip=CKV_TF_1: a Terraform Registry module pinned to a version range; the registry serves immutable versions; a git commit pin would bypass the registry
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 20.37"

  cluster_name    = var.cluster_name
  cluster_version = var.kubernetes_version

  cluster_endpoint_public_access       = true
  cluster_endpoint_public_access_cidrs = var.api_allowed_cidrs
  # Whoever runs terraform can administer the cluster (and apply pinip below).
  enable_cluster_creator_admin_permissions = true
  # IRSA: pinip's ServiceAccount assumes the role in iam.tf through this OIDC provider.
  enable_irsa = true

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  cluster_addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni    = { before_compute = true }
  }

  eks_managed_node_groups = {
    # The nodes whose egress partners whitelist: pinip runs here (nodeSelector
    # pinip.dev/pool=public in deploy/base) and gives each one an address of the pool.
    public = {
      subnet_ids     = module.vpc.public_subnets
      instance_types = var.instance_types
      min_size       = 1
      max_size       = var.public_nodes_max
      desired_size   = var.public_nodes
      labels         = { "pinip.dev/pool" = "public" }
      # What the pool accepts from outside the VPC: var.public_inbound and nothing else.
      vpc_security_group_ids = [aws_security_group.public_inbound.id]
      taints = var.taint_public_nodes ? {
        pinip = { key = "pinip.dev/not-ready", value = "true", effect = "NO_SCHEDULE" }
      } : {}
    }
    # Everything else: no pinip label, so no agent and no static address.
    private = {
      subnet_ids     = module.vpc.private_subnets
      instance_types = var.instance_types
      min_size       = 1
      max_size       = 3
      desired_size   = var.private_nodes
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
        server                     = module.eks.cluster_endpoint
        certificate-authority-data = module.eks.cluster_certificate_authority_data
      }
    }]
    users = [{
      name = var.cluster_name
      user = {
        exec = {
          apiVersion = "client.authentication.k8s.io/v1beta1"
          command    = "aws"
          args       = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
        }
      }
    }]
    contexts = [{
      name    = var.cluster_name
      context = { cluster = var.cluster_name, user = var.cluster_name }
    }]
  })
}

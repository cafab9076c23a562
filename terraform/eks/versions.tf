terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.95, < 6.0"
    }
    # Renders deploy/overlays/aws (kustomize, as `kubectl apply -k` would) and applies it.
    kustomization = {
      source  = "kbst/kustomization"
      version = "~> 0.9"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "pinip-example" = var.cluster_name })
  }
}

# The cluster's API, authenticated like kubectl with `aws eks get-token` (the AWS CLI
# must be installed where terraform runs).
provider "kustomization" {
  kubeconfig_raw = local.kubeconfig
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  arn_prefix = "arn:${data.aws_partition.current.partition}:ec2:${var.region}:${data.aws_caller_identity.current.account_id}"
  # pinip's ServiceAccount, as deploy/base creates it.
  service_account = "system:serviceaccount:pinip-system:pinip"
}

# Least privilege for the agent: deploy/iam/aws-policy.json (the EC2 calls of
# providers/src/aws), narrowed here to this cluster's pool, region and account.
# .ci/validate-deploy fails when the actions or tag keys here and there differ.
data "aws_iam_policy_document" "pinip" {
  # Read the pool, the node's instance, its primary network interface and (IPv6) its
  # subnet. EC2's Describe* actions support no resource-level permissions: "*" is the
  # only resource they take.
  statement {
    sid = "Describe"
    actions = [
      "ec2:DescribeAddresses",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
    ]
    resources = ["*"]
  }

  # Attach and detach only the Elastic IPs of this cluster's pool ...
  statement {
    sid       = "AssociatePoolAddresses"
    actions   = ["ec2:AssociateAddress", "ec2:DisassociateAddress"]
    resources = ["${local.arn_prefix}:elastic-ip/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/kubeip"
      values   = ["reserved"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/pinip-cluster"
      values   = [var.cluster_name]
    }
  }

  # ... to network interfaces and instances of this region and account.
  statement {
    sid       = "AssociateToNodes"
    actions   = ["ec2:AssociateAddress", "ec2:DisassociateAddress"]
    resources = ["${local.arn_prefix}:network-interface/*", "${local.arn_prefix}:instance/*"]
  }

  # The ownership record: only pinip's own tag keys, only on the pool's addresses.
  statement {
    sid       = "OwnershipTags"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["${local.arn_prefix}:elastic-ip/*"]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/kubeip"
      values   = ["reserved"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/pinip-cluster"
      values   = [var.cluster_name]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["pinip.dev/cluster", "pinip.dev/node", "pinip.dev/instance"]
    }
  }

  # IPv6: assign an address of the pool to the node's interface, and record it there.
  dynamic "statement" {
    for_each = var.ipv6 ? [1] : []
    content {
      sid       = "Ipv6Addresses"
      actions   = ["ec2:AssignIpv6Addresses", "ec2:UnassignIpv6Addresses"]
      resources = ["${local.arn_prefix}:network-interface/*"]
    }
  }
  dynamic "statement" {
    for_each = var.ipv6 ? [1] : []
    content {
      sid       = "Ipv6OwnershipTags"
      actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
      resources = ["${local.arn_prefix}:network-interface/*"]

      condition {
        test     = "ForAllValues:StringEquals"
        variable = "aws:TagKeys"
        values   = ["pinip.dev/cluster", "pinip.dev/node", "pinip.dev/instance", "pinip.dev/ipv6-address"]
      }
    }
  }
}

resource "aws_iam_policy" "pinip" {
  name        = "${var.cluster_name}-pinip"
  description = "pinip agent: pin the reserved addresses of ${var.cluster_name} to its public nodes"
  policy      = data.aws_iam_policy_document.pinip.json
}

# IRSA: only pinip's ServiceAccount in this cluster may assume the role.
data "aws_iam_policy_document" "pinip_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = [local.service_account]
    }
    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "pinip" {
  name               = "${var.cluster_name}-pinip"
  description        = "Assumed by pinip-system/pinip in ${var.cluster_name} (IRSA)"
  assume_role_policy = data.aws_iam_policy_document.pinip_trust.json
}

resource "aws_iam_role_policy_attachment" "pinip" {
  role       = aws_iam_role.pinip.name
  policy_arn = aws_iam_policy.pinip.arn
}

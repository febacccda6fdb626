"""EKS: a VPC over two AZs, IAM roles, the control plane, a system node group, GPU node groups.

Kinds (namespaced v2 provider-upjet-aws): ec2 VPC, two public Subnets, InternetGateway,
RouteTable + default Route + associations; iam Roles and RolePolicyAttachments for the control
plane and the nodes; eks Cluster, ClusterAuth (the kubeconfig connection secret, its token
refreshed by the provider), NodeGroups; and EFS (FileSystem, MountTargets, an NFS security
group, the EFS CSI add-on) behind an ``efs-sc`` StorageClass for model caches.

A pool with ``capacityBlock`` runs on a purchased EC2 Capacity Block for ML: its NodeGroup has
capacity type ``CAPACITY_BLOCK`` and uses an ec2 LaunchTemplate whose instance market type is
``capacity-block`` and whose capacity reservation targets the block's reservation ID (the
node group names the template by name and its latest version, which the provider reports once
the template exists). A Capacity Block lives in one availability zone, so the pool must name
exactly that zone, one of the cluster's subnets' zones.

A pool with ``fabric: EFA`` gets Elastic Fabric Adapter interfaces through the same kind of
LaunchTemplate: one ``efa`` network interface per network card (card 0 at device index 0, the
others at device index 1, as AWS recommends), as many as the class declares EFA devices or else
the instance type has (``contract/fabric.py``). EFA traffic needs a security group that lets the
group's members reach each other on all traffic: one per pool, with a self-referencing ingress
and egress rule. A launch template that names network interfaces replaces the security groups
EKS would attach, so every interface carries both that group and the cluster's security group
(which the provider reports once the cluster exists); the template waits for both IDs.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelplane.contract import fabric
from modelplane.contract.inferenceclass import accelerator_kind
from modelplane.contract.metadata import CLUSTER_LABEL
from modelplane.step import Resource
from modelplane.steps.inferencecluster import charts
from modelplane.steps.inferencecluster.common import (
    Ctx,
    Infra,
    Pool,
    managed,
    pool_resource_name,
    ref,
)

EC2 = "ec2.aws.m.upbound.io/v1beta1"
IAM = "iam.aws.m.upbound.io/v1beta1"
EKS = "eks.aws.m.upbound.io/v1beta1"
EFS = "efs.aws.m.upbound.io/v1beta1"

AZ_SUFFIXES = ("a", "b")  # EKS requires subnets in at least two availability zones
GPU_AMI = "AL2023_x86_64_NVIDIA"
NEURON_AMI = "AL2023_x86_64_NEURON"
STANDARD_AMI = "AL2023_x86_64_STANDARD"
SYSTEM_INSTANCE_TYPE = "m6i.xlarge"
CAPACITY_BLOCK = "CAPACITY_BLOCK"  # NodeGroup capacityType of a Capacity Block
CAPACITY_BLOCK_MARKET = "capacity-block"  # LaunchTemplate instanceMarketOptions.marketType
ROOT_DEVICE = "/dev/xvda"  # the AL2023 EKS AMIs' root volume
SYSTEM_MIN, SYSTEM_MAX, SYSTEM_DESIRED = 1, 3, 2
STORAGE_CLASS = "efs-sc"

_POLICY = "arn:aws:iam::aws:policy/"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy",
                 "AmazonEC2ContainerRegistryReadOnly",
                 "service-role/AmazonEFSCSIDriverPolicy")


def _assume(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service},
        "Action": "sts:AssumeRole"}]}, sort_keys=True)


def subnet_cidrs(vpc_cidr: str) -> list[str] | str:
    """Two equal subnets carved from the VPC CIDR, or a reason it cannot be split."""
    try:
        net = ipaddress.ip_network(vpc_cidr, strict=True)
    except ValueError as exc:
        return f"spec.cluster.eks.vpcCidr {vpc_cidr!r} is not a network CIDR ({exc})"
    if net.prefixlen > 26:
        return f"spec.cluster.eks.vpcCidr {vpc_cidr!r} is too small for two subnets (max /26)"
    new_prefix = min(net.prefixlen + 4, 27)
    return [str(s) for s in list(net.subnets(new_prefix=new_prefix))[:2]]


def compose(ctx: Ctx, pools: list[Pool], observed: Mapping[str, Resource]) -> Infra:
    eks = ctx.block()
    region = str(eks.get("region", ""))
    vpc_cidr = str(eks.get("vpcCidr") or "10.0.0.0/16")
    out = Infra(stack_depends_on=["cluster", "cluster-auth"], kubeconfig_from="cluster-auth",
                dra_values={"nvidiaDriverRoot": "/"})
    efa_counts: dict[str, int] = {}
    out.efa_interfaces = efa_counts
    cidrs = subnet_cidrs(vpc_cidr)
    if isinstance(cidrs, str):
        out.problems.append(cidrs)
        return out
    tags = {CLUSTER_LABEL: ctx.name}
    n = {k: ctx.res_name(k) for k in ("vpc", "igw", "rt", "cluster", "cluster-role",
                                      "node-role", "efs", "efs-sg")}

    def net(kind: str, rname: str, name: str, body: dict[str, Any]) -> None:
        out.resources[rname] = managed(ctx, EC2, kind, name,
                                       {"region": region, "tags": tags, **body})

    net("VPC", "vpc", n["vpc"], {"cidrBlock": vpc_cidr, "enableDnsSupport": True,
                                 "enableDnsHostnames": True})
    net("InternetGateway", "internet-gateway", n["igw"], {"vpcIdRef": ref(n["vpc"])})
    net("RouteTable", "route-table", n["rt"], {"vpcIdRef": ref(n["vpc"])})
    out.resources["default-route"] = managed(ctx, EC2, "Route", ctx.res_name("default-route"), {
        "region": region, "destinationCidrBlock": "0.0.0.0/0",
        "gatewayIdRef": ref(n["igw"]), "routeTableIdRef": ref(n["rt"])})
    subnets: list[str] = []
    for suffix, cidr in zip(AZ_SUFFIXES, cidrs, strict=True):
        sname = ctx.res_name("subnet", suffix)
        subnets.append(sname)
        net("Subnet", f"subnet-{suffix}", sname, {
            "vpcIdRef": ref(n["vpc"]), "cidrBlock": cidr,
            "availabilityZone": f"{region}{suffix}", "mapPublicIpOnLaunch": True,
            "tags": {**tags, "kubernetes.io/role/elb": "1"}})
        out.resources[f"subnet-{suffix}-route"] = managed(
            ctx, EC2, "RouteTableAssociation", ctx.res_name("subnet", suffix, "route"), {
                "region": region, "subnetIdRef": ref(sname), "routeTableIdRef": ref(n["rt"])})

    for role, service, policies in (("cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES),
                                    ("node-role", "ec2.amazonaws.com", NODE_POLICIES)):
        out.resources[role] = managed(ctx, IAM, "Role", n[role], {
            "assumeRolePolicy": _assume(service), "tags": tags})
        for policy in policies:
            short = policy.rsplit("/", 1)[-1].lower().replace("_", "-")
            out.resources[f"{role}-{short}"] = managed(
                ctx, IAM, "RolePolicyAttachment", ctx.res_name(role, short), {
                    "policyArn": _POLICY + policy, "roleRef": ref(n[role])})

    out.resources["cluster"] = managed(ctx, EKS, "Cluster", n["cluster"], {
        "region": region,
        "version": ctx.kubernetes_version(),
        "roleArnRef": ref(n["cluster-role"]),
        "vpcConfig": {"subnetIdRefs": [ref(s) for s in subnets],
                      "endpointPublicAccess": True, "endpointPrivateAccess": True},
        # The provider's identity administers the cluster it creates (API access entries).
        "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP",
                         "bootstrapClusterCreatorAdminPermissions": True},
        "tags": tags,
    })
    out.resources["cluster-auth"] = managed(
        ctx, EKS, "ClusterAuth", ctx.res_name("auth"),
        {"region": region, "clusterNameRef": ref(n["cluster"])},
        writeConnectionSecretToRef={"name": ctx.res_name("kubeconfig")})
    out.kubeconfig = {"name": ctx.res_name("kubeconfig"), "namespace": "crossplane-system",
                      "key": "kubeconfig"}

    out.resources["system-pool"] = managed(ctx, EKS, "NodeGroup", ctx.res_name("system"), {
        "region": region, "clusterNameRef": ref(n["cluster"]),
        "nodeRoleArnRef": ref(n["node-role"]), "subnetIdRefs": [ref(s) for s in subnets],
        "instanceTypes": [SYSTEM_INSTANCE_TYPE], "amiType": STANDARD_AMI,
        "scalingConfig": {"minSize": SYSTEM_MIN, "maxSize": SYSTEM_MAX,
                          "desiredSize": SYSTEM_DESIRED},
        "tags": tags})

    _efs(ctx, out, region, vpc_cidr, subnets, n, tags, observed)

    zones = {f"{region}{s}": sname for s, sname in zip(AZ_SUFFIXES, subnets, strict=True)}
    for pool in pools:
        chosen = [zones[z] for z in pool.zones if z in zones] if pool.zones else subnets
        problem = (capacity_block_zone_problem(pool, sorted(zones))
                   if pool.capacity_reservation else None)
        if problem:
            out.pool_problems[pool.name] = problem
            continue
        if not chosen:
            out.pool_problems[pool.name] = (
                f"spec.nodePools[{pool.name}].zones {list(pool.zones)} name none of the "
                f"cluster's zones {sorted(zones)}")
            continue
        efa: Efa | None = None
        if pool.fabric == "EFA":
            got = fabric.interfaces(str(pool.shape("eks").get("instanceType", "")), pool.devices)
            if isinstance(got, str):
                out.pool_problems[pool.name] = f"spec.nodePools[{pool.name}].fabric 'EFA': {got}"
                continue
            sg = _efa_security_group(ctx, out, pool, region, n, tags)
            groups = [_observed_id(observed.get(sg)), _cluster_security_group(observed)]
            efa = Efa(got, [g for g in groups if g])
            efa_counts[pool.name] = got
        rname = pool_resource_name(pool.name)
        out.pool_resource[pool.name] = rname
        template: dict[str, str] | None = None
        if pool.capacity_reservation or efa is not None:
            lt_rname = f"launch-template-{pool.name}"
            if efa is not None and len(efa.security_groups) < 2:
                # The interfaces' security groups are known once the EFA group and the cluster
                # exist; an existing template and node group are kept meanwhile.
                continue
            out.resources[lt_rname] = launch_template(ctx, pool, region, tags, efa)
            version = _latest_version(observed.get(lt_rname))
            if version is None:
                # The node group names a template version, known once the template exists;
                # an existing node group is kept as it is meanwhile (compose keeps observed).
                continue
            template = {"name": launch_template_name(ctx, pool), "version": version}
        out.pools[rname] = node_group(ctx, pool, region, n, chosen, tags, template)
        out.pools[rname]["spec"]["forProvider"]["version"] = ctx.kubernetes_version()
    return out


def capacity_block_zone_problem(pool: Pool, cluster_zones: list[str]) -> str | None:
    """Why the pool's zones cannot be its Capacity Block's (one zone, a cluster subnet's)."""
    where = f"spec.nodePools[{pool.name}].zones"
    reservation = f"capacity block {pool.capacity_reservation}"
    if len(pool.zones) != 1:
        return (f"{where} {list(pool.zones)} must be exactly the one availability zone of "
                f"{reservation} (a Capacity Block lives in one zone; the cluster's zones are "
                f"{cluster_zones})")
    if pool.zones[0] not in cluster_zones:
        return (f"{where} {list(pool.zones)}: {reservation}'s zone must be one of the "
                f"cluster's zones {cluster_zones}")
    return None


def launch_template_name(ctx: Ctx, pool: Pool) -> str:
    return ctx.res_name("pool", pool.name)


@dataclass(frozen=True)
class Efa:
    """A pool's EFA interfaces: how many per node, and the security groups each carries."""

    interfaces: int
    security_groups: list[str]


def _observed_id(observed: Resource | None) -> str | None:
    at = ((observed or {}).get("status") or {}).get("atProvider") or {}
    value = at.get("id") if isinstance(at, Mapping) else None
    return str(value) if value else None


def _cluster_security_group(observed: Mapping[str, Resource]) -> str | None:
    """The security group EKS created for the cluster (control plane <-> nodes)."""
    at = ((observed.get("cluster") or {}).get("status") or {}).get("atProvider") or {}
    vpc = at.get("vpcConfig") if isinstance(at, Mapping) else None
    if isinstance(vpc, list):  # older provider versions report a one-element list
        vpc = vpc[0] if vpc else None
    value = vpc.get("clusterSecurityGroupId") if isinstance(vpc, Mapping) else None
    return str(value) if value else None


def _efa_security_group(ctx: Ctx, out: Infra, pool: Pool, region: str, n: Mapping[str, str],
                        tags: Mapping[str, str]) -> str:
    """The pool's EFA security group and its self-referencing rules; its resource name.

    EFA requires that the group's members may send each other all traffic, in and out
    (ipProtocol -1 covers every protocol and port).
    """
    name = ctx.res_name("efa", pool.name)
    rname = f"efa-security-group-{pool.name}"
    out.resources[rname] = managed(ctx, EC2, "SecurityGroup", name, {
        "region": region, "vpcIdRef": ref(n["vpc"]), "name": name,
        "description": f"EFA traffic between the nodes of pool {pool.name} of {ctx.name}",
        "tags": dict(tags)})
    for direction, kind in (("ingress", "SecurityGroupIngressRule"),
                            ("egress", "SecurityGroupEgressRule")):
        out.resources[f"efa-{direction}-{pool.name}"] = managed(
            ctx, EC2, kind, ctx.res_name("efa", pool.name, direction), {
                "region": region, "securityGroupIdRef": ref(name),
                "referencedSecurityGroupIdRef": ref(name), "ipProtocol": "-1",
                "description": f"all traffic {'from' if direction == 'ingress' else 'to'} the "
                               f"EFA nodes of pool {pool.name}"})
    return rname


def efa_interfaces(efa: Efa) -> list[dict[str, Any]]:
    """One EFA interface per network card: card 0 is the primary (device index 0)."""
    return [{"networkCardIndex": i, "deviceIndex": 0 if i == 0 else 1, "interfaceType": "efa",
             "deleteOnTermination": "true", "securityGroups": sorted(efa.security_groups)}
            for i in range(efa.interfaces)]


def launch_template(ctx: Ctx, pool: Pool, region: str, tags: Mapping[str, str],
                    efa: Efa | None = None) -> Resource:
    """The LaunchTemplate a Capacity Block or EFA node group launches its instances from.

    It carries only what EKS lets a node group's template carry: no AMI (the node group's
    amiType bootstraps the node), no instance profile, no subnet. The root volume size moves
    here because a node group with a launch template must not set diskSize.
    """
    shape = pool.shape("eks")
    what = [f"Capacity Block {pool.capacity_reservation}"] if pool.capacity_reservation else []
    if efa is not None:
        what.append(f"{efa.interfaces} EFA interfaces")
    body: dict[str, Any] = {
        "region": region,
        "name": launch_template_name(ctx, pool),
        "description": f"{' and '.join(what)} for pool {pool.name} of {ctx.name}",
        "tags": dict(tags),
    }
    if pool.capacity_reservation:
        body["instanceMarketOptions"] = {"marketType": CAPACITY_BLOCK_MARKET}
        body["capacityReservationSpecification"] = {"capacityReservationTarget": {
            "capacityReservationId": str(pool.capacity_reservation)}}
    if efa is not None:
        body["networkInterfaces"] = efa_interfaces(efa)
    if shape.get("diskSizeGb"):
        body["blockDeviceMappings"] = [{"deviceName": ROOT_DEVICE, "ebs": {
            "volumeSize": int(shape["diskSizeGb"]), "volumeType": "gp3",
            "deleteOnTermination": "true"}}]
    return managed(ctx, EC2, "LaunchTemplate", launch_template_name(ctx, pool), body)


def _latest_version(observed: Resource | None) -> str | None:
    at = ((observed or {}).get("status") or {}).get("atProvider") or {}
    version = at.get("latestVersion") if isinstance(at, Mapping) else None
    return str(int(version)) if isinstance(version, int | float) and version else None


def ami_type(pool: Pool) -> str:
    """The EKS-optimised AMI for the pool's accelerator (eks.accelerator, else its devices)."""
    acc = pool.shape("eks").get("accelerator")
    if isinstance(acc, Mapping) and accelerator_kind(str(acc.get("type", ""))) == "Neuron":
        return NEURON_AMI
    return GPU_AMI if pool.has_nvidia_gpu else STANDARD_AMI


def node_group(ctx: Ctx, pool: Pool, region: str, n: Mapping[str, str], subnets: list[str],
               tags: Mapping[str, str], template: Mapping[str, str] | None = None) -> Resource:
    """One managed NodeGroup: the pool's scaling bounds with the class's instance shape.

    ``template`` ({name, version}) is the pool's LaunchTemplate, when it has one.
    """
    shape = pool.shape("eks")
    capacity = "SPOT" if pool.spot else (
        "ON_DEMAND" if pool.spot is False else str(shape.get("capacityType") or "ON_DEMAND"))
    if pool.capacity_reservation:
        capacity = CAPACITY_BLOCK
    body: dict[str, Any] = {
        "region": region,
        "clusterNameRef": ref(n["cluster"]),
        "nodeRoleArnRef": ref(n["node-role"]),
        "subnetIdRefs": [ref(s) for s in subnets],
        "instanceTypes": [str(shape.get("instanceType", ""))],
        "amiType": str(shape.get("amiType") or ami_type(pool)),
        "capacityType": capacity,
        # AWS requires maxSize >= 1; a 0-ceiling pool simply never scales up (min = desired = 0).
        "scalingConfig": {"minSize": pool.min_nodes, "maxSize": max(pool.max_nodes, 1),
                          "desiredSize": pool.node_count},
        "labels": dict(sorted(pool.node_labels().items())),
        "tags": dict(tags),
    }
    if template is not None:
        body["launchTemplate"] = dict(template)
    elif shape.get("diskSizeGb"):
        body["diskSize"] = int(shape["diskSizeGb"])
    if pool.has_nvidia_gpu:
        body["taint"] = [{"key": charts.GPU_TAINT_KEY, "value": charts.GPU_TAINT_VALUE,
                          "effect": "NO_SCHEDULE"}]
    return managed(ctx, EKS, "NodeGroup", ctx.res_name("pool", pool.name), body)


def _efs(ctx: Ctx, out: Infra, region: str, vpc_cidr: str, subnets: list[str],
         n: Mapping[str, str], tags: Mapping[str, str], observed: Mapping[str, Resource]) -> None:
    """EFS for ReadWriteMany model caches: file system, mount targets, NFS rule, CSI add-on."""
    out.resources["efs-security-group"] = managed(ctx, EC2, "SecurityGroup", n["efs-sg"], {
        "region": region, "vpcIdRef": ref(n["vpc"]), "name": n["efs-sg"],
        "description": f"NFS from the VPC of {ctx.name} to its EFS mount targets",
        "tags": dict(tags)})
    out.resources["efs-nfs-ingress"] = managed(
        ctx, EC2, "SecurityGroupIngressRule", ctx.res_name("efs-nfs"), {
            "region": region, "securityGroupIdRef": ref(n["efs-sg"]), "cidrIpv4": vpc_cidr,
            "ipProtocol": "tcp", "fromPort": 2049, "toPort": 2049})
    out.resources["efs"] = managed(ctx, EFS, "FileSystem", n["efs"], {
        "region": region, "encrypted": True, "performanceMode": "generalPurpose",
        "throughputMode": "elastic", "tags": dict(tags)})
    for i, sname in enumerate(subnets):
        out.resources[f"efs-mount-{AZ_SUFFIXES[i]}"] = managed(
            ctx, EFS, "MountTarget", ctx.res_name("efs", AZ_SUFFIXES[i]), {
                "region": region, "fileSystemIdRef": ref(n["efs"]), "subnetIdRef": ref(sname),
                "securityGroupsRefs": [ref(n["efs-sg"])]})
    out.resources["efs-csi-addon"] = managed(ctx, EKS, "Addon", ctx.res_name("efs-csi"), {
        "region": region, "addonName": "aws-efs-csi-driver",
        "clusterNameRef": ref(n["cluster"]), "resolveConflictsOnCreate": "OVERWRITE"})
    # The StorageClass names the file system's ID, known once the provider has created it.
    fs_id = (((observed.get("efs") or {}).get("status") or {}).get("atProvider") or {}).get("id")
    if fs_id:
        out.cluster_objects["storage-class"] = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": "efs.csi.aws.com",
            "parameters": {"provisioningMode": "efs-ap", "fileSystemId": str(fs_id),
                           "directoryPerms": "700"},
        }
        out.storage_class = STORAGE_CLASS

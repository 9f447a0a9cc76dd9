/**
 * Organizations events as EventBridge delivers them from CloudTrail on the management account's default bus in
 * us-east-1. Each `detail` is a CloudTrail record. docs/organizations.md cites each source and says which are AWS's:
 * - CreateAccountResult (SUCCEEDED and FAILED) and CreateOrganizationalUnit: the AWS Organizations User Guide's recorded
 *   log entries ("Logging API calls with AWS CloudTrail for AWS Organizations").
 * - MoveAccount: RECONSTRUCTED. No AWS-published record was found; it is the CloudTrail record format with the
 *   MoveAccount API's request parameters (API Reference). Only the management account can move accounts, so it is
 *   recorded there.
 * - AcceptHandshake: RECONSTRUCTED, same way, with the Handshake response of the API Reference. Only the invited
 *   account can accept an INVITE, so the record is the invited account's (recipientAccountId): the management
 *   account's bus never sees it, and the rules do not forward it.
 * - AccountJoinedOrganization: RECONSTRUCTED around what AWS documents (API Reference, AcceptHandshake and
 *   CreateAccount: logged only in the management account's event history, with joinedMethod Created or Invited and
 *   joinedTime; What's New, 28 May 2026). Where those fields and the joined account's ID sit is not documented, so the
 *   rules match on eventSource and eventName only, and under either detail-type.
 * The envelope (detail-type "AWS API Call via CloudTrail" / "AWS Service Event via CloudTrail", source
 * aws.organizations) is EventBridge's for CloudTrail events (EventBridge User Guide, "AWS service events delivered
 * via AWS CloudTrail").
 */
export const MANAGEMENT = '111122223333';

const envelope = (detailType: string, detail: Record<string, unknown>) => ({
  version: '0',
  id: 'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111',
  'detail-type': detailType,
  source: 'aws.organizations',
  account: MANAGEMENT,
  time: '2026-11-30T10:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail,
});

const adminIdentity = {
  type: 'AssumedRole',
  principalId: 'AIDAMVNPBQA3EXAMPLE:my-admin-role',
  arn: `arn:aws:sts::${MANAGEMENT}:assumed-role/my-admin-role/my-session-id`,
  accountId: MANAGEMENT,
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
};

export function createAccountResult(accountId: string, state: 'SUCCEEDED' | 'FAILED' = 'SUCCEEDED') {
  return envelope('AWS Service Event via CloudTrail', {
    eventVersion: '1.05',
    userIdentity: { accountId: MANAGEMENT, invokedBy: 'AWS Internal' },
    eventTime: '2026-11-30T09:59:53Z',
    eventSource: 'organizations.amazonaws.com',
    eventName: 'CreateAccountResult',
    awsRegion: 'us-east-1',
    sourceIPAddress: '192.0.2.0',
    userAgent: 'AWS Internal',
    requestParameters: null,
    responseElements: null,
    eventID: 'EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE',
    readOnly: false,
    eventType: 'AwsServiceEvent',
    recipientAccountId: MANAGEMENT,
    serviceEventDetails: {
      createAccountStatus: state === 'SUCCEEDED'
        ? {
            id: 'car-examplecreateaccountrequestid111', state, accountName: '****', accountId,
            requestedTimestamp: 'Nov 30, 2026 9:59:50 AM', completedTimestamp: 'Nov 30, 2026 9:59:53 AM',
          }
        : {
            id: 'car-examplecreateaccountrequestid111', state, accountName: '****', failureReason: 'EMAIL_ALREADY_EXISTS',
            requestedTimestamp: 'Nov 30, 2026 9:59:50 AM', completedTimestamp: 'Nov 30, 2026 9:59:53 AM',
          },
    },
  });
}

export function moveAccount(accountId: string, sourceParentId: string, destinationParentId: string, errorCode?: string) {
  return envelope('AWS API Call via CloudTrail', {
    eventVersion: '1.08',
    userIdentity: adminIdentity,
    eventTime: '2026-11-30T09:59:53Z',
    eventSource: 'organizations.amazonaws.com',
    eventName: 'MoveAccount',
    awsRegion: 'us-east-1',
    sourceIPAddress: '192.0.2.0',
    userAgent: 'aws-cli/2.22.0',
    ...(errorCode ? { errorCode, errorMessage: "We can't find the destination container (a root or OU) with the ParentId that you specified." } : {}),
    requestParameters: { accountId, sourceParentId, destinationParentId },
    responseElements: null,
    requestID: 'EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE',
    eventID: 'EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE',
    readOnly: false,
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: MANAGEMENT,
    eventCategory: 'Management',
  });
}

/** The invited account accepts: only a principal of the member account can accept an INVITE handshake (recorded there). */
export function acceptHandshake(memberAccountId: string) {
  return envelope('AWS API Call via CloudTrail', {
    eventVersion: '1.08',
    userIdentity: {
      type: 'AssumedRole',
      principalId: 'AROAEXAMPLEID:admin',
      arn: `arn:aws:sts::${memberAccountId}:assumed-role/Admin/admin`,
      accountId: memberAccountId,
      accessKeyId: 'ASIAEXAMPLEKEY',
    },
    eventTime: '2026-11-30T09:59:53Z',
    eventSource: 'organizations.amazonaws.com',
    eventName: 'AcceptHandshake',
    awsRegion: 'us-east-1',
    sourceIPAddress: '192.0.2.0',
    userAgent: 'aws-cli/2.22.0',
    requestParameters: { handshakeId: 'h-examplehandshakeid111' },
    responseElements: {
      handshake: {
        id: 'h-examplehandshakeid111',
        arn: `arn:aws:organizations::${MANAGEMENT}:handshake/o-aa111bb222/invite/h-examplehandshakeid111`,
        parties: [{ type: 'ORGANIZATION', id: 'o-aa111bb222' }, { type: 'ACCOUNT', id: memberAccountId }],
        state: 'ACCEPTED',
        action: 'INVITE',
        requestedTimestamp: 'Nov 29, 2026 9:41:16 PM',
        expirationTimestamp: 'Dec 14, 2026 9:41:16 PM',
      },
    },
    requestID: 'EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE',
    eventID: 'EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE',
    readOnly: false,
    eventType: 'AwsApiCall',
    managementEvent: true,
    recipientAccountId: memberAccountId,
    eventCategory: 'Management',
  });
}

export function createOrganizationalUnit() {
  return envelope('AWS API Call via CloudTrail', {
    eventVersion: '1.05',
    userIdentity: adminIdentity,
    eventTime: '2026-11-30T09:59:53Z',
    eventSource: 'organizations.amazonaws.com',
    eventName: 'CreateOrganizationalUnit',
    awsRegion: 'us-east-1',
    sourceIPAddress: '192.0.2.0',
    requestParameters: { name: 'OU-Developers-1', parentId: 'r-a1b2' },
    responseElements: { organizationalUnit: { arn: `arn:aws:organizations::${MANAGEMENT}:ou/o-aa111bb222/ou-a1b2-exampleo`, id: 'ou-a1b2-exampleo', name: 'OU-Developers-1' } },
    eventType: 'AwsApiCall',
    recipientAccountId: MANAGEMENT,
  });
}

/**
 * An account joined the organization (created or invited). Reconstructed: the documented fields (joinedMethod,
 * joinedTime) are placed in serviceEventDetails by analogy with CreateAccountResult; nothing tested depends on where.
 */
export function accountJoinedOrganization(accountId: string, joinedMethod: 'Created' | 'Invited', detailType = 'AWS Service Event via CloudTrail') {
  return envelope(detailType, {
    eventVersion: '1.11',
    userIdentity: { accountId: MANAGEMENT, invokedBy: 'organizations.amazonaws.com' },
    eventTime: '2026-11-30T09:59:53Z',
    eventSource: 'organizations.amazonaws.com',
    eventName: 'AccountJoinedOrganization',
    awsRegion: 'us-east-1',
    sourceIPAddress: 'organizations.amazonaws.com',
    userAgent: 'organizations.amazonaws.com',
    requestParameters: null,
    responseElements: null,
    eventID: 'EXAMPLE8-90ab-cdef-fedc-ba987EXAMPLE',
    readOnly: false,
    eventType: 'AwsServiceEvent',
    managementEvent: true,
    recipientAccountId: MANAGEMENT,
    serviceEventDetails: { accountId, joinedMethod, joinedTime: '2026-11-30T09:59:53Z' },
    eventCategory: 'Management',
  });
}

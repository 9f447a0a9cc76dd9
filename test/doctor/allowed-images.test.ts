import { EC2Client, GetAllowedImagesSettingsCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { allowedImagesCheck } from '../../cli/allowed-images';
import { ACCOUNT_A, awsError, item, testClients } from '../support/fixtures';

const ec2Mock = mockClient(EC2Client);
const clients = () => testClients().target({ accountId: ACCOUNT_A, roleName: 'AmiPipelineTarget', sessionName: 'doctor' });

beforeEach(() => ec2Mock.reset());

describe("the doctor's Allowed AMIs check", () => {
  it('passes quietly when the setting is disabled (an account default)', async () => {
    ec2Mock.on(GetAllowedImagesSettingsCommand).resolves({ State: 'disabled', ImageCriteria: [], ManagedBy: 'account' });
    expect(await allowedImagesCheck(item(), clients())).toEqual({ scope: `${ACCOUNT_A}/eu-west-1`, check: 'allowed-amis', verdict: 'pass', message: 'Allowed AMIs: disabled (every AMI may be used)' });
  });

  it('informs that owned copies are allowed when a declarative policy enables criteria', async () => {
    ec2Mock.on(GetAllowedImagesSettingsCommand).resolves({ State: 'enabled', ManagedBy: 'declarative-policy', ImageCriteria: [{ ImageProviders: ['amazon'] }] });
    const check = await allowedImagesCheck(item(), clients());
    expect(check.verdict).toBe('pass');
    expect(check.message).toContain('Allowed AMIs: enabled, managed by declarative-policy, 1 criteria');
    expect(check.message).toContain(`owned by ${ACCOUNT_A} and always allowed`);
  });

  it('warns, without failing the doctor, when the role may not read the setting', async () => {
    ec2Mock.on(GetAllowedImagesSettingsCommand).rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const check = await allowedImagesCheck(item(), clients());
    expect(check).toMatchObject({ verdict: 'warn', awsError: 'UnauthorizedOperation: You are not authorized to perform this operation.' });
    expect(check.fix).toContain('ec2:GetAllowedImagesSettings');
  });
});

// A temporary etcd for the length of one piece of work: started, ready, used, stopped.
import { TempEtcd, type StartOptions } from './server.ts';

export async function withTempEtcd<T>(opts: StartOptions, work: (endpoint: string) => Promise<T>): Promise<T> {
  const etcd = new TempEtcd(opts);
  let result: T;
  try {
    await etcd.waitReady();
    result = await work(etcd.endpoint);
  } catch (e) {
    await etcd.kill();
    throw e;
  }
  await etcd.stop();
  return result;
}

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { dashboardQueries, podTargets, prometheusConfig, resolveQuery } from './prometheus';

const pod = (name: string, annotations: Record<string, string> | undefined, phase = 'Running') => ({
  metadata: { name, namespace: 'granary', annotations, labels: { 'app.kubernetes.io/component': 'cache' } },
  spec: { nodeName: 'granary-node' },
  status: { phase, podIP: '10.213.0.9' },
});

describe('the harness\'s Prometheus', () => {
  it('scrapes the Running pods annotated prometheus.io/scrape at their annotated port and path, labelled like pod discovery does', () => {
    expect(podTargets([
      pod('cache-a', { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7070', 'prometheus.io/path': '/metrics' }),
      pod('not-annotated', undefined),
      pod('pending', { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '7070' }, 'Pending'),
      pod('no-port', { 'prometheus.io/scrape': 'true' }),
    ])).toEqual([{
      targets: ['10.213.0.9:7070'],
      labels: { __metrics_path__: '/metrics', namespace: 'granary', pod: 'cache-a', node: 'granary-node', component: 'cache' },
    }]);
    expect(parse(prometheusConfig('/x/targets.json')).scrape_configs[0].file_sd_configs[0].files).toEqual(['/x/targets.json']);
  });

  it('reads every query of the chart\'s dashboard and resolves its variables as Grafana does', () => {
    const dashboard = fs.readFileSync(path.join(__dirname, '..', '..', 'charts', 'granary', 'dashboards', 'granary-cache.json'), 'utf8');
    const queries = dashboardQueries(dashboard);
    expect(queries.map((query) => query.panel)).toContain('Ring members');
    expect(queries.every((query) => query.expr.length > 0)).toBe(true);
    const resolved = queries.map((query) => resolveQuery(query.expr, { namespace: 'granary' }, '90s'));
    expect(resolved.filter((expr) => expr.includes('$'))).toEqual([]);
    expect(resolveQuery('rate(x{namespace=~"$namespace"}[$__rate_interval])', { namespace: 'granary' }, '90s')).toBe('rate(x{namespace=~"granary"}[90s])');
    expect(() => resolveQuery('x{pod="${pod}"}', { namespace: 'granary' }, '1m')).toThrow('uses $pod, which has no value');
  });
});
